package queue

import (
	"context"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

// TestDSNParameters: RCPT's NOTIFY and ORCPT and MAIL's RET and ENVID
// are kept through the spool and honoured in the failure notification:
// only the recipients whose NOTIFY asks for failures are reported, each
// with its Original-Recipient, the envelope ID is written back, and
// RET=FULL returns the whole message.
func TestDSNParameters(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{RcptReply: func(r string) error {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no mailbox here by that name"}
	}})
	f := newFixture(t, srv.Port, nil)
	ctx := context.Background()
	env := &mail.Envelope{From: "alice@a.test", DSNReturn: "FULL", EnvID: "QQ314159"}
	d, err := f.q.Start(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		addr string
		dsn  mail.RcptDSN
	}{
		{"bob@b.test", mail.RcptDSN{Notify: mail.NotifyFailure, ORcptType: "rfc822", ORcpt: "team@a.test"}},
		{"carol@b.test", mail.RcptDSN{Notify: mail.NotifyNever}},
		{"dave@b.test", mail.RcptDSN{Notify: mail.NotifyDelay | mail.NotifySuccess}},
		{"erin@b.test", mail.RcptDSN{ORcptType: "utf-8", ORcpt: "jörg+x@bücher.test"}},
	} {
		if err := d.AddRecipient(mail.WithRcptDSN(ctx, r.dsn), r.addr); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Body(ctx, bytesBody(signed)); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// A restart reads the parameters back from the spool.
	f.q.Close()
	f.q = f.open(t, srv.Port, nil)
	f.runDue(t)
	dsns := f.bounces.all()
	if len(dsns) != 1 {
		t.Fatalf("%d notifications, want 1", len(dsns))
	}
	raw := string(dsns[0].data)
	rep := parseDSN(t, dsns[0].data)
	if len(rep.recipients) != 2 {
		t.Fatalf("recipients reported: %+v", rep.recipients)
	}
	if !strings.Contains(raw, "\r\nOriginal-Envelope-Id: QQ314159\r\nReporting-MTA: dns; mta.a.test\r\n") {
		t.Errorf("no Original-Envelope-Id in\n%s", raw)
	}
	if !strings.Contains(raw, "\r\n\r\nOriginal-Recipient: rfc822;team@a.test\r\nFinal-Recipient: rfc822; bob@b.test\r\nAction: failed\r\n") {
		t.Errorf("bob's fields wrong in\n%s", raw)
	}
	if !strings.Contains(raw, "\r\n\r\nOriginal-Recipient: utf-8;jörg\\x{2B}x@bücher.test\r\nFinal-Recipient: rfc822; erin@b.test\r\n") {
		t.Errorf("erin's fields wrong in\n%s", raw)
	}
	for _, no := range []string{"carol@b.test", "dave@b.test"} {
		if strings.Contains(raw, no) {
			t.Errorf("%s reported against its NOTIFY:\n%s", no, raw)
		}
	}
	if !strings.Contains(raw, "Content-Type: message/rfc822\r\nContent-Description: Undelivered message\r\n\r\n"+signed) || rep.headers != signed {
		t.Errorf("RET=FULL: message not returned whole: %q in\n%s", rep.headers, raw)
	}
}

// TestDSNNotifyNever: a failure of recipients that all asked NOTIFY=NEVER
// sends nothing, and the message leaves the queue.
func TestDSNNotifyNever(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{RcptReply: func(r string) error {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no"}
	}})
	f := newFixture(t, srv.Port, nil)
	ctx := context.Background()
	d, err := f.q.Start(ctx, &mail.Envelope{From: "alice@a.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AddRecipient(mail.WithRcptDSN(ctx, mail.RcptDSN{Notify: mail.NotifyNever}), "bob@b.test"); err != nil {
		t.Fatal(err)
	}
	if err := d.Body(ctx, bytesBody(signed)); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	f.runDue(t)
	if n := len(f.bounces.all()); n != 0 {
		t.Fatalf("%d notifications, want none", n)
	}
	if ids := f.ids(t); len(ids) != 0 {
		t.Fatalf("still queued: %v", ids)
	}
}

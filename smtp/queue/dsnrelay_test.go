package queue

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

// queueWithDSN queues signed from alice for bob (NOTIFY=SUCCESS,FAILURE
// with an ORCPT), carol (no NOTIFY) and dave (NOTIFY=SUCCESS), runs the
// attempt against a next hop that offers DSN or not, and returns the
// notifications sent and the envelope commands the hop received.
func queueWithDSN(t *testing.T, hopDSN bool) ([]recorded, []string) {
	srv := outboundtest.Start(t, outboundtest.Options{DSN: hopDSN})
	f := newFixture(t, srv.Port, nil)
	ctx := context.Background()
	d, err := f.q.Start(ctx, &mail.Envelope{From: "alice@a.test", DSNReturn: "HDRS", EnvID: "QQ314159"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		addr string
		dsn  mail.RcptDSN
	}{
		{"bob@b.test", mail.RcptDSN{Notify: mail.NotifySuccess | mail.NotifyFailure, ORcptType: "rfc822", ORcpt: "team@a.test"}},
		{"carol@b.test", mail.RcptDSN{}},
		{"dave@b.test", mail.RcptDSN{Notify: mail.NotifySuccess}},
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
	f.runDue(t)
	if n := srv.Count(); n != 1 {
		t.Fatalf("next hop got %d messages, want 1", n)
	}
	if ids := f.ids(t); len(ids) != 0 {
		t.Fatalf("still queued: %v", ids)
	}
	return f.bounces.all(), srv.Commands()
}

// TestDSNRelayedToHopWithoutDSN: a next hop that does not offer DSN gets
// no DSN parameters, and the recipients that asked NOTIFY=SUCCESS are
// named in one notice, Action: relayed, Status 2.0.0 (RFC 3461 section
// 5.2.2), with their Original-Recipient.
func TestDSNRelayedToHopWithoutDSN(t *testing.T) {
	dsns, cmds := queueWithDSN(t, false)
	for _, c := range cmds {
		if strings.Contains(c, "NOTIFY=") || strings.Contains(c, "ORCPT=") || strings.Contains(c, "ENVID=") || strings.Contains(c, "RET=") {
			t.Errorf("DSN parameter sent to a hop without DSN: %q", c)
		}
	}
	if len(dsns) != 1 {
		t.Fatalf("%d notifications, want 1", len(dsns))
	}
	if dsns[0].env.From != "" || strings.Join(dsns[0].env.Recipients, ",") != "alice@a.test" {
		t.Errorf("notice envelope from %q to %v", dsns[0].env.From, dsns[0].env.Recipients)
	}
	raw := string(dsns[0].data)
	rep := parseDSN(t, dsns[0].data)
	if len(rep.recipients) != 2 {
		t.Fatalf("recipients reported: %+v", rep.recipients)
	}
	for _, want := range []string{
		"\r\nOriginal-Envelope-Id: QQ314159\r\n",
		"\r\n\r\nOriginal-Recipient: rfc822;team@a.test\r\nFinal-Recipient: rfc822; bob@b.test\r\nAction: relayed\r\nStatus: 2.0.0\r\n",
		"\r\n\r\nFinal-Recipient: rfc822; dave@b.test\r\nAction: relayed\r\nStatus: 2.0.0\r\n",
		"Content-Type: text/rfc822-headers\r\n",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("no %q in\n%s", want, raw)
		}
	}
	if strings.Contains(raw, "carol@b.test") {
		t.Errorf("carol reported without NOTIFY=SUCCESS:\n%s", raw)
	}
}

// TestDSNPassedToHopWithDSN: a next hop that offers DSN gets RET and
// ENVID on MAIL and NOTIFY and ORCPT on RCPT, and reports success
// itself: the queue sends no notice.
func TestDSNPassedToHopWithDSN(t *testing.T) {
	dsns, cmds := queueWithDSN(t, true)
	if len(dsns) != 0 {
		t.Fatalf("%d notifications, want none:\n%s", len(dsns), dsns[0].data)
	}
	want := []string{
		"RET=HDRS ENVID=QQ314159",
		"RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=RFC822;team@a.test",
		"RCPT TO:<carol@b.test>",
		"RCPT TO:<dave@b.test> NOTIFY=SUCCESS",
	}
	if len(cmds) != 4 || !strings.HasSuffix(cmds[0], " "+want[0]) || !slices.Equal(cmds[1:], want[1:]) {
		t.Errorf("on the wire:\n%q\nwant MAIL ending %q then\n%q", cmds, want[0], want[1:])
	}
}

package smtp

import (
	"context"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/router"
)

// routedDSNStack serves role through a router whose queue is a dsnQueue.
func routedDSNStack(t *testing.T, role Role) (*testStack, dsnQueue, string) {
	t.Helper()
	st := newTestStack(t)
	dq := newDSNQueue(t)
	r, err := router.New(router.Options{Directory: st.db, Local: st.local, Queue: dq})
	if err != nil {
		t.Fatal(err)
	}
	opts := st.options(role)
	opts.Target = r
	addr, _ := st.serve(opts)
	return st, dq, addr
}

func (d dsnQueue) NotifyDelivered(ctx context.Context, env *mail.Envelope, body mail.Body, delivered []mail.Success) (mail.Delivery, error) {
	return d.q.NotifyDelivered(ctx, env, body, delivered)
}

// TestDSNSuccessLocal: once the Maildir copies are committed, the
// recipients that asked NOTIFY=SUCCESS are named in one notice from <>
// to the sender, Action: delivered, Status 2.0.0, with their
// Original-Recipient; a recipient without SUCCESS is not named, and the
// null sender gets nothing.
func TestDSNSuccessLocal(t *testing.T) {
	st, dq, mx := routedDSNStack(t, MX)
	c := dial(t, "tcp", mx)
	c.run(`
		S: 220
		C: EHLO client.example
		S: 250
		C: MAIL FROM:<s@far.example> ENVID=E7
		S: 250
		C: RCPT TO:<alice@local.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Alice+2Bx@local.example
		S: 250
		C: RCPT TO:<bob@local.example> NOTIFY=FAILURE
		S: 250
		C: RCPT TO:<team@local.example> NOTIFY=SUCCESS
		S: 250
		C: DATA
		S: 354
		R: "Subject: ok\r\n\r\nx\r\n.\r\n"
		S: 250
		C: MAIL FROM:<> 
		S: 250
		C: RCPT TO:<alice@local.example> NOTIFY=SUCCESS
		S: 250
		C: DATA
		S: 354
		R: "Subject: from null\r\n\r\nx\r\n.\r\n"
		S: 250
		C: QUIT
		S: 221`)
	if n := len(st.messages("alice@local.example", "")); n != 2 {
		t.Fatalf("alice has %d messages, want 2", n)
	}
	got := dq.All()
	if len(got) != 1 {
		t.Fatalf("%d notifications, want 1", len(got))
	}
	if got[0].From != "" || strings.Join(got[0].Rcpts, ",") != "s@far.example" {
		t.Errorf("notice from %q to %v, want from <> to s@far.example", got[0].From, got[0].Rcpts)
	}
	dsn := got[0].Data
	containsAll(t, dsn, []string{
		"Subject: Successful Mail Delivery Report\r\n",
		"\r\nOriginal-Envelope-Id: E7\r\nReporting-MTA: dns; mx.local.example\r\n",
		"\r\n\r\nOriginal-Recipient: rfc822;Alice+x@local.example\r\nFinal-Recipient: rfc822; alice@local.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n",
		"\r\n\r\nFinal-Recipient: rfc822; team@local.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n",
		"Content-Type: text/rfc822-headers\r\n",
		"Subject: ok\r\n",
	})
	if strings.Contains(dsn, "bob@local.example") {
		t.Errorf("bob named without NOTIFY=SUCCESS:\n%s", dsn)
	}
}

// TestDSNSuccessLMTP: over LMTP, only the recipients answered 250 and
// committed are reported delivered; one failing after DATA is not.
func TestDSNSuccessLMTP(t *testing.T) {
	st, dq, addr := routedDSNStack(t, LMTP)
	c := dial(t, "tcp", addr)
	c.run(`
		S: 220
		C: LHLO client.example
		S: 250
		C: MAIL FROM:<s@far.example>
		S: 250
		C: RCPT TO:<alice@local.example> NOTIFY=SUCCESS
		S: 250
		C: RCPT TO:<small@local.example> NOTIFY=SUCCESS
		S: 250`)
	if err := st.db.SetDisabled(context.Background(), "small@local.example", true); err != nil {
		t.Fatal(err)
	}
	c.run(`
		C: DATA
		S: 354
		R: "Subject: lmtp\r\n\r\nx\r\n.\r\n"
		S: 250
		S: 550
		C: QUIT
		S: 221`)
	got := dq.All()
	var notices []string
	for _, g := range got {
		if strings.Contains(g.Data, "Action: delivered") {
			notices = append(notices, g.Data)
		}
	}
	if len(notices) != 1 {
		t.Fatalf("%d success notices, want 1: %+v", len(notices), got)
	}
	containsAll(t, notices[0], []string{
		"\r\n\r\nFinal-Recipient: rfc822; alice@local.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n",
	})
	if strings.Contains(notices[0], "Final-Recipient: rfc822; small@") {
		t.Errorf("small reported delivered:\n%s", notices[0])
	}
}

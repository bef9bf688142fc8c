package smtp

import (
	"context"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/internal/smtptest"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/queue"
	"github.com/mailagent/mailagent/smtp/router"
)

// refusingCourier stands for every next hop refusing every recipient.
type refusingCourier struct{}

func (refusingCourier) Open(ctx context.Context, hop outbound.NextHop) (queue.Conn, error) {
	return refusingConn{}, nil
}

type refusingConn struct{}

func (refusingConn) Send(ctx context.Context, m *outbound.Message) []outbound.Result {
	var res []outbound.Result
	for _, r := range m.Recipients {
		res = append(res, outbound.Result{Recipient: r, Remote: "mx.far.example[192.0.2.9]",
			Err: &mail.Error{Code: 550, EnhancedCode: [3]int{5, 1, 1}, Message: "no such user"}})
	}
	return res
}
func (refusingConn) Usable() bool { return true }
func (refusingConn) Close() error { return nil }

// TestDSNParametersOnTheWire: the MX offers DSN; RCPT's ORCPT and
// NOTIFY and MAIL's RET and ENVID travel with a forwarded recipient
// through the router into the queue, and the failure notification's
// bytes carry them: Original-Envelope-Id, Original-Recipient (the ORCPT
// given, not the forwarding's target), the whole message for RET=FULL.
// A malformed or oversized ORCPT or ENVID is refused with 501 5.5.4.
func TestDSNParametersOnTheWire(t *testing.T) {
	st := newTestStack(t)
	bounces := &smtptest.Recorder{}
	q, err := queue.New(queue.Options{Dir: t.TempDir(), Courier: refusingCourier{}, Bounces: bounces, Hostname: "mx.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	r, err := router.New(router.Options{Directory: st.db, Local: st.local, Queue: q})
	if err != nil {
		t.Fatal(err)
	}
	opts := st.options(MX)
	opts.Target = r
	mx, _ := st.serve(opts)
	c := dial(t, "tcp", mx)
	c.run(`
		S: 220
		C: EHLO client.example
		S: 250
		H: DSN
		C: MAIL FROM:<sender@far.example> ENVID=` + strings.Repeat("x", 101) + `
		S: 501 5.5.4
		C: MAIL FROM:<sender@far.example> RET=FULL ENVID=QQ+2B314
		S: 250
		C: RCPT TO:<out@local.example> ORCPT=rfc822;a+0D+0AX-Inj:+201@local.example
		S: 501 5.5.4
		C: RCPT TO:<out@local.example> ORCPT=utf-8;a\x{D}b@local.example
		S: 501 5.5.4
		C: RCPT TO:<out@local.example> ORCPT=rfc822;` + strings.Repeat("a", 490) + `@local.example
		S: 501 5.5.4
		C: RCPT TO:<out@local.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;Out+2Btag@local.example
		S: 250
		C: DATA
		S: 354
		R: "From: <sender@far.example>\r\nSubject: dsn\r\n\r\nbody\r\n.\r\n"
		S: 250
		C: QUIT
		S: 221`)
	if err := q.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := bounces.All()
	if len(got) != 1 {
		t.Fatalf("%d notifications, want 1", len(got))
	}
	dsn := got[0].Data
	containsAll(t, dsn, []string{
		"\r\nOriginal-Envelope-Id: QQ+314\r\nReporting-MTA: dns; mx.test\r\n",
		"\r\n\r\nOriginal-Recipient: rfc822;Out+tag@local.example\r\nFinal-Recipient: rfc822; someone@far.example\r\nAction: failed\r\nStatus: 5.1.1\r\n",
		"Content-Type: message/rfc822\r\nContent-Description: Undelivered message\r\n\r\nReceived: from client.example ([127.0.0.1])\r\n",
		"Subject: dsn\r\n\r\nbody\r\n\r\n--dsn-",
	})
	if strings.Contains(dsn, "X-Inj") {
		t.Errorf("refused ORCPT reached the notification:\n%s", dsn)
	}
	// alice, the local target of the same forwarding, got her copy.
	if n := len(st.messages("alice@local.example", "")); n != 1 {
		t.Errorf("alice has %d messages, want 1", n)
	}
}

// TestDSNParametersLateFailure: a recipient failing after DATA (its
// account disabled since RCPT) is notified with its ORCPT and the
// message's ENVID, the whole message for RET=FULL; with NOTIFY=NEVER
// nothing is sent, and the other recipient's copy is stored either way.
func TestDSNParametersLateFailure(t *testing.T) {
	st, dq, mx := routedDSNStack(t, MX)
	for i, notify := range []string{"NOTIFY=FAILURE ORCPT=rfc822;Small+2Bx@local.example", "NOTIFY=NEVER"} {
		if err := st.db.SetDisabled(context.Background(), "small@local.example", false); err != nil {
			t.Fatal(err)
		}
		c := dial(t, "tcp", mx)
		c.run(`
			S: 220
			C: EHLO client.example
			S: 250
			C: MAIL FROM:<s@far.example> RET=FULL ENVID=E1
			S: 250
			C: RCPT TO:<alice@local.example>
			S: 250
			C: RCPT TO:<small@local.example> ` + notify + `
			S: 250`)
		if err := st.db.SetDisabled(context.Background(), "small@local.example", true); err != nil {
			t.Fatal(err)
		}
		c.run(`
			C: DATA
			S: 354
			R: "Subject: late\r\n\r\nx\r\n.\r\n"
			S: 250
			C: QUIT
			S: 221`)
		if n := len(st.messages("alice@local.example", "")); n != i+1 {
			t.Fatalf("alice has %d messages, want %d", n, i+1)
		}
	}
	got := dq.All()
	if len(got) != 1 {
		t.Fatalf("%d notifications, want 1 (none for NOTIFY=NEVER)", len(got))
	}
	dsn := got[0].Data
	containsAll(t, dsn, []string{
		"\r\nOriginal-Envelope-Id: E1\r\nReporting-MTA: dns; mx.local.example\r\n",
		"\r\n\r\nOriginal-Recipient: rfc822;Small+x@local.example\r\nFinal-Recipient: rfc822; small@local.example\r\nAction: failed\r\n",
		"Content-Type: message/rfc822\r\nContent-Description: Undelivered message\r\n\r\nReceived: from client.example",
		"Subject: late\r\n\r\nx\r\n\r\n--dsn-",
	})
}

// containsAll fails t for each of wants that notification dsn lacks.
func containsAll(t *testing.T, dsn string, wants []string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(dsn, want) {
			t.Errorf("notification lacks %q:\n%s", want, dsn)
		}
	}
}

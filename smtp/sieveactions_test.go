package smtp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/smtp/internal/smtptest"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/queue"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

// dsnQueue stands in for the outbound queue: messages are recorded when
// committed, and its notifications are the real queue's (RFC 3464),
// recorded the same way.
type dsnQueue struct {
	*smtptest.Recorder
	q *queue.Queue
}

func (d dsnQueue) Bounce(ctx context.Context, env *mail.Envelope, body mail.Body, failed []mail.Failure) (mail.Delivery, error) {
	return d.q.Bounce(ctx, env, body, failed)
}

func newDSNQueue(t *testing.T) dsnQueue {
	t.Helper()
	rec := &smtptest.Recorder{}
	q, err := queue.New(queue.Options{Dir: t.TempDir(), Courier: queue.Outbound(&outbound.Client{}), Bounces: rec, Hostname: "mx.local.example"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return dsnQueue{Recorder: rec, q: q}
}

// sieveScripts writes each user's active script.
func sieveScripts(t *testing.T, st *testStack, scripts map[string]string) {
	t.Helper()
	for u, s := range scripts {
		home := filepath.Dir(st.userDir(u))
		if err := os.MkdirAll(home, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, ".dovecot.sieve"), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// deliverThree delivers msg from from to the three users, all or
// nothing as over SMTP; any failure fails the test.
func deliverThree(t *testing.T, ld *local.Delivery, from, msg string) {
	t.Helper()
	smtptest.Deliver(t, ld, &mail.Envelope{ID: "R1", From: from, Hostname: "mx.local.example"}, threeRcpts, msg)
}

// TestSieveRedirectAtDelivery: alice redirects (her copy is not kept),
// small@ redirects :copy (kept and sent), bob's message already went
// through bob's delivery (Delivered-To: bob) so his redirect is not sent
// and the message kept. Each redirect keeps the envelope sender and
// carries the Delivered-To and Received trace; nothing is sent for a
// message that is not committed.
func TestSieveRedirectAtDelivery(t *testing.T) {
	st := newTestStack(t)
	st.roomForSmall()
	sieveScripts(t, st, map[string]string{
		"alice@local.example": `redirect "a@elsewhere.example";`,
		"small@local.example": `require "copy"; redirect :copy "s@elsewhere.example";`,
		"bob@local.example":   `redirect "b@elsewhere.example";`,
	})
	out := &smtptest.Recorder{}
	ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db,
		Filter: &local.SieveFilter{MaildirBase: filepath.Join(st.dir, "mail"), Outbound: out}}
	deliverThree(t, ld, "s@far.example", "Delivered-To: bob@local.example\r\nSubject: hi\r\n\r\nbody\r\n")
	if got := st.counts(); got != "0,1,1" {
		t.Fatalf("stored alice,small,bob: %s, want 0,1,1", got)
	}
	sent := out.All()
	if len(sent) != 2 {
		t.Fatalf("%d redirects sent, want 2: %+v", len(sent), sent)
	}
	to := map[string]smtptest.Message{}
	for _, m := range sent {
		if len(m.Rcpts) != 1 || m.From != "s@far.example" {
			t.Fatalf("redirect envelope: from %q to %v", m.From, m.Rcpts)
		}
		to[m.Rcpts[0]] = m
	}
	a, ok := to["a@elsewhere.example"]
	if !ok || !strings.HasPrefix(a.Data, "Delivered-To: alice@local.example\r\nReceived: by mx.local.example (mailagent sieve redirect) id R1 for <a@elsewhere.example>; ") ||
		!strings.HasSuffix(a.Data, "\r\nDelivered-To: bob@local.example\r\nSubject: hi\r\n\r\nbody\r\n") {
		t.Fatalf("alice's redirect: %q", a.Data)
	}
	if _, ok := to["s@elsewhere.example"]; !ok {
		t.Fatalf("small@'s :copy redirect not sent: %+v", sent)
	}

	// From the null sender the redirect keeps <>.
	out.Reset()
	deliverThree(t, ld, "", "Subject: bounce\r\n\r\nx\r\n")
	if sent := out.All(); len(sent) != 3 || sent[0].From != "" || sent[1].From != "" || sent[2].From != "" {
		t.Fatalf("redirects of a bounce: %+v", sent)
	}

	// A message refused after staging sends nothing.
	out.Reset()
	ctx := context.Background()
	d, _ := ld.Start(ctx, &mail.Envelope{ID: "R2", From: "s@far.example"})
	d.AddRecipient(ctx, "alice@local.example")
	if err := d.Body(ctx, mail.BytesBody([]byte("Subject: x\r\n\r\nx\r\n"))); err != nil {
		t.Fatal(err)
	}
	d.Abort(ctx)
	if n := len(out.All()); n != 0 {
		t.Fatalf("%d redirects sent for an aborted message", n)
	}
}

// TestSieveRedirectSenderAndLimit: RedirectSender rewrites the envelope
// sender (SRS), and a user's redirects of one message are bounded: past
// the limit, the message is kept.
func TestSieveRedirectSenderAndLimit(t *testing.T) {
	st := newTestStack(t)
	sieveScripts(t, st, map[string]string{
		"alice@local.example": `redirect "a1@elsewhere.example"; redirect "a2@elsewhere.example";`,
	})
	before := filepath.Join(st.dir, "before.sieve")
	os.WriteFile(before, []byte(`require "copy"; redirect :copy "b1@elsewhere.example";`), 0o600)
	out := &smtptest.Recorder{}
	ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db, Filter: &local.SieveFilter{
		MaildirBase: filepath.Join(st.dir, "mail"), Outbound: out, Before: []string{before},
		RedirectSender: func(_ *store.User, env *mail.Envelope, to string) string {
			return "SRS0=x=far.example=" + strings.Split(env.From, "@")[0] + "@local.example"
		}}}
	ld.Filter.(*local.SieveFilter).Limits.MaxRedirects = 2
	ctx := context.Background()
	d, _ := ld.Start(ctx, &mail.Envelope{ID: "L1", From: "s@far.example"})
	d.AddRecipient(ctx, "alice@local.example")
	if err := d.Body(ctx, mail.BytesBody([]byte("Subject: x\r\n\r\nx\r\n"))); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	sent := out.All()
	if len(sent) != 2 || sent[0].From != "SRS0=x=far.example=s@local.example" || sent[1].Rcpts[0] != "a1@elsewhere.example" {
		t.Fatalf("sent %+v, want 2 redirects from the rewritten sender", sent)
	}
	if n := len(st.messages("alice@local.example", "")); n != 1 {
		t.Fatalf("INBOX has %d, want the message kept past the limit", n)
	}
}

// TestSieveRejectAtDelivery: of three recipients the second's script
// rejects: the first and third get the message, and the sender gets one
// notification naming the second alone with the script's reason, whose
// line breaks cannot start a header field of their own.
func TestSieveRejectAtDelivery(t *testing.T) {
	st := newTestStack(t)
	st.roomForSmall()
	sieveScripts(t, st, map[string]string{
		"small@local.example": "require \"reject\"; reject text:\r\nNot here.\r\nX-Injected: yes\r\n.\r\n;",
	})
	q := newDSNQueue(t)
	ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db,
		Filter: &local.SieveFilter{MaildirBase: filepath.Join(st.dir, "mail"), Outbound: q}}
	deliverThree(t, ld, "s@far.example", "Subject: offer\r\n\r\nbody\r\n")
	if got := st.counts(); got != "1,0,1" {
		t.Fatalf("stored alice,small,bob: %s, want 1,0,1", got)
	}
	sent := q.All()
	if len(sent) != 1 || sent[0].From != "" || len(sent[0].Rcpts) != 1 || sent[0].Rcpts[0] != "s@far.example" {
		t.Fatalf("notifications %+v, want one from <> to the sender", sent)
	}
	dsn := sent[0].Data
	for _, want := range []string{"Final-Recipient: rfc822; small@local.example\r\n", "Status: 5.7.1\r\n",
		"Diagnostic-Code: X-mailagent; 550 5.7.1 Not here. X-Injected: yes\r\n", "Subject: offer"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("notification lacks %q:\n%s", want, dsn)
		}
	}
	for _, bad := range []string{"alice@local.example", "bob@local.example", "\r\nX-Injected"} {
		if strings.Contains(dsn, bad) {
			t.Errorf("notification has %q:\n%s", bad, dsn)
		}
	}

	// Never to the null sender, nor for automatic mail: discarded.
	q.Reset()
	deliverThree(t, ld, "", "Subject: bounce\r\n\r\nx\r\n")
	deliverThree(t, ld, "s@far.example", "Auto-Submitted: auto-replied\r\nSubject: away\r\n\r\nx\r\n")
	deliverThree(t, ld, "s@far.example", "List-Id: <dev.far.example>\r\nSubject: list\r\n\r\nx\r\n")
	if n := len(q.All()); n != 0 {
		t.Fatalf("%d notifications for null-sender, automatic or list mail", n)
	}
	if got := st.counts(); got != "4,0,4" {
		t.Fatalf("stored: %s, want 4,0,4", got)
	}
}

// TestSieveERejectOverLMTP: over LMTP, ereject refuses that recipient
// alone with 550 5.7.1 and the reason, and no notification is sent; the
// others are delivered.
func TestSieveERejectOverLMTP(t *testing.T) {
	st := newTestStack(t)
	st.roomForSmall()
	sieveScripts(t, st, map[string]string{"small@local.example": `require "ereject"; ereject "Go away";`})
	q := newDSNQueue(t)
	ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db,
		Filter: &local.SieveFilter{MaildirBase: filepath.Join(st.dir, "mail"), Outbound: q}}
	ctx := context.Background()
	d, _ := ld.Start(ctx, &mail.Envelope{ID: "E1", From: "s@far.example"})
	for _, r := range threeRcpts {
		d.AddRecipient(ctx, r)
	}
	status := &mail.StatusMap{}
	d.(mail.PartialDelivery).BodyNonAtomic(ctx, status, mail.BytesBody([]byte("Subject: x\r\n\r\nx\r\n")))
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res := status.Results()
	for _, r := range threeRcpts {
		err := res[r]
		if r == "small@local.example" {
			var se *mail.Error
			if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != [3]int{5, 7, 1} || se.Message != "Go away" {
				t.Fatalf("small@: %#v", err)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
	if got := st.counts(); got != "1,0,1" {
		t.Fatalf("stored: %s", got)
	}
	if n := len(q.All()); n != 0 {
		t.Fatalf("%d notifications, want none over LMTP", n)
	}
}

// TestSieveScriptSenders: a vacation's :from and a redirect's edited
// From are used only when submission's rule lets the user send as them
// (sales@other.example forwards to alice; boss@local.example does not),
// else the default is sent; what the script sends as is DKIM-signed when
// its domain has a key.
func TestSieveScriptSenders(t *testing.T) {
	st := newTestStack(t)
	key, err := dnsauth.GenerateDKIMKey("local.example", "sel", dnsauth.DKIMAlgoEd25519)
	if err != nil {
		t.Fatal(err)
	}
	mayUse, err := SenderCheck(st.db, store.ResolveOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := &smtptest.Recorder{}
	f := &local.SieveFilter{MaildirBase: filepath.Join(st.dir, "mail"), Outbound: out, MayUse: mayUse,
		Signer: DKIMSigner{Signer: dnsauth.NewSigner([]*dnsauth.DKIMKey{key})}}
	ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db, Filter: f}
	ctx := context.Background()
	run := func(script, from string) smtptest.Message {
		t.Helper()
		sieveScripts(t, st, map[string]string{"alice@local.example": script})
		out.Reset()
		d, _ := ld.Start(ctx, &mail.Envelope{ID: "F1", From: from})
		d.AddRecipient(ctx, "alice@local.example")
		msg := "From: " + from + "\r\nTo: alice@local.example\r\nSubject: hi\r\n\r\nx\r\n"
		if err := d.Body(ctx, mail.BytesBody([]byte(msg))); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		sent := out.All()
		if len(sent) != 1 {
			t.Fatalf("%d messages sent, want 1", len(sent))
		}
		return sent[0]
	}
	fromField := func(data string) string {
		for _, l := range strings.Split(data, "\r\n") {
			if strings.HasPrefix(l, "From: ") {
				return l
			}
		}
		return ""
	}
	vac := `require "vacation"; vacation :from "%s" "Away.";`
	if m := run(strings.Replace(vac, "%s", "Sales <sales@other.example>", 1), "a@far.example"); fromField(m.Data) != `From: "Sales" <sales@other.example>` {
		t.Fatalf("owned :from: %q", fromField(m.Data))
	}
	m := run(strings.Replace(vac, "%s", "boss@local.example", 1), "b@far.example")
	if fromField(m.Data) != "From: alice@local.example" || !strings.HasPrefix(m.Data, "DKIM-Signature: ") {
		t.Fatalf("not owned :from: %q, want the user's address, signed:\n%s", fromField(m.Data), m.Data)
	}
	red := `require "editheader"; deleteheader "From"; addheader "From" "%s"; redirect "x@elsewhere.example";`
	m = run(strings.Replace(red, "%s", "alice@local.example", 1), "c@far.example")
	if fromField(m.Data) != "From: alice@local.example" || !strings.HasPrefix(m.Data, "DKIM-Signature: ") {
		t.Fatalf("redirect with an owned From: %q, want it signed:\n%s", fromField(m.Data), m.Data)
	}
	m = run(strings.Replace(red, "%s", "boss@local.example", 1), "d@far.example")
	if fromField(m.Data) != "From: d@far.example" || strings.Contains(m.Data, "DKIM-Signature") {
		t.Fatalf("redirect with a From not owned: %q, want the message's own, unsigned:\n%s", fromField(m.Data), m.Data)
	}
}

// TestSieveScriptSequence: as Pigeonhole's sieve_before sequence, the
// user's script runs after a before script that kept the message (even
// one that ran stop) but not after one that filed it; a failing script
// later in the sequence delivers the original message to INBOX, without
// the before script's header edits, and sends none of its redirects.
func TestSieveScriptSequence(t *testing.T) {
	st := newTestStack(t)
	sieveScripts(t, st, map[string]string{"alice@local.example": `require ["fileinto","mailbox","include"];
if header :contains "subject" "fail" { include "missing"; }
fileinto :create "Personal";`})
	before := filepath.Join(st.dir, "before.sieve")
	os.WriteFile(before, []byte(`require ["fileinto","mailbox","editheader","copy"];
addheader "X-Before" "1";
if header :contains "subject" "spam" { fileinto :create "Spam"; stop; }
if header :contains "subject" "fail" { redirect :copy "r@elsewhere.example"; }
if header :contains "subject" "halt" { stop; }`), 0o600)
	out := &smtptest.Recorder{}
	ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db, Filter: &local.SieveFilter{
		MaildirBase: filepath.Join(st.dir, "mail"), Outbound: out, Before: []string{before}}}
	ctx := context.Background()
	deliver := func(subject string) {
		t.Helper()
		d, _ := ld.Start(ctx, &mail.Envelope{ID: "Q1", From: "s@far.example"})
		d.AddRecipient(ctx, "alice@local.example")
		if err := d.Body(ctx, mail.BytesBody([]byte("Subject: "+subject+"\r\n\r\nx\r\n"))); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	deliver("spam")
	if s, p := len(st.messages("alice@local.example", "Spam")), len(st.messages("alice@local.example", "Personal")); s != 1 || p != 0 {
		t.Fatalf("filed by the before script: Spam %d, Personal %d; want 1, 0", s, p)
	}
	deliver("halt")
	if p := st.messages("alice@local.example", "Personal"); len(p) != 1 {
		t.Fatalf("after a before script's stop, Personal has %d, want 1", len(p))
	}
	deliver("fail")
	inbox := st.messages("alice@local.example", "")
	if len(inbox) != 1 || strings.Contains(inbox[0], "X-Before") || !strings.HasSuffix(inbox[0], "\r\nSubject: fail\r\n\r\nx\r\n") {
		t.Fatalf("after a failing script INBOX has %q, want the original message", inbox)
	}
	if n := len(out.All()); n != 0 {
		t.Fatalf("%d redirects sent after a failing script", n)
	}
}

// TestSieveRejectOnTheWire: over the MX the second of three recipients
// rejects: the message gets 250 and the sender one notification; over
// LMTP the same recipient's ereject is its own 550 5.7.1 with the reason
// while the others get 250.
func TestSieveRejectOnTheWire(t *testing.T) {
	run := func(t *testing.T, role Role, script string, replies []string) (*testStack, dsnQueue) {
		st := newTestStack(t)
		st.roomForSmall()
		sieveScripts(t, st, map[string]string{"small@local.example": script})
		q := newDSNQueue(t)
		st.withLocal(&local.Delivery{Maildirs: st.maildirs, Directory: st.db,
			Filter: &local.SieveFilter{MaildirBase: filepath.Join(st.dir, "mail"), Outbound: q}})
		addr, _ := st.serve(st.options(role))
		hello := "EHLO"
		if role == LMTP {
			hello = "LHLO"
		}
		dialog := "S: 220\nC: " + hello + " mta.example\nS: 250\nC: MAIL FROM:<s@far.example>\nS: 250\n"
		for _, r := range threeRcpts {
			dialog += "C: RCPT TO:<" + r + ">\nS: 250\n"
		}
		dialog += "C: DATA\nS: 354\nR: " + fmt.Sprintf("%q", "Subject: offer\r\n\r\nhi\r\n.\r\n") + "\n"
		for _, r := range replies {
			dialog += "S: " + r + "\n"
		}
		dial(t, "tcp", addr).run(dialog + "C: QUIT\nS: 221")
		if got := st.counts(); got != "1,0,1" {
			t.Fatalf("stored: %s, want 1,0,1", got)
		}
		return st, q
	}
	t.Run("MX", func(t *testing.T) {
		_, q := run(t, MX, `require "reject"; reject "No offers";`, []string{"250"})
		if sent := q.All(); len(sent) != 1 || !strings.Contains(sent[0].Data, "Final-Recipient: rfc822; small@local.example\r\n") ||
			!strings.Contains(sent[0].Data, "550 5.7.1 No offers") {
			t.Fatalf("notifications: %+v", sent)
		}
	})
	t.Run("LMTP", func(t *testing.T) {
		_, q := run(t, LMTP, `require "ereject"; ereject "Go away";`, []string{"250", "550 5.7.1 <small@local.example> Go away", "250"})
		if n := len(q.All()); n != 0 {
			t.Fatalf("%d notifications over LMTP", n)
		}
	})
}

// TestSieveRejectDSNParameters: a Sieve reject's notification is the
// queue's, written from the same DSN parameters as its bounces: the
// rejecting recipient's ORCPT as Original-Recipient, the message's ENVID
// as Original-Envelope-Id, the whole message for RET=FULL. A recipient
// whose NOTIFY leaves out failures (NEVER, or SUCCESS alone) causes no
// notification, and is not reported delivered either.
func TestSieveRejectDSNParameters(t *testing.T) {
	st := newTestStack(t)
	st.roomForSmall()
	sieveScripts(t, st, map[string]string{"small@local.example": `require "reject"; reject "No offers";`})
	dq := newDSNQueue(t)
	r, err := router.New(router.Options{Directory: st.db, Queue: dq, Local: &local.Delivery{Maildirs: st.maildirs, Directory: st.db,
		Filter: &local.SieveFilter{MaildirBase: filepath.Join(st.dir, "mail"), Outbound: dq}}})
	if err != nil {
		t.Fatal(err)
	}
	o := st.options(MX)
	o.Target = r
	addr, _ := st.serve(o)
	send := func(params string) []smtptest.Message {
		t.Helper()
		before := len(dq.All())
		dial(t, "tcp", addr).run(`
			S: 220
			C: EHLO client.example
			S: 250
			C: MAIL FROM:<s@far.example> RET=FULL ENVID=QQ314159
			S: 250
			C: RCPT TO:<alice@local.example>
			S: 250
			C: RCPT TO:<small@local.example> ` + params + `
			S: 250
			C: DATA
			S: 354
			R: "Subject: offer\r\n\r\nthe whole offer\r\n.\r\n"
			S: 250
			C: QUIT
			S: 221`)
		return dq.All()[before:]
	}

	got := send("NOTIFY=FAILURE ORCPT=rfc822;Small+2Bx@local.example")
	if len(got) != 1 || got[0].From != "" || strings.Join(got[0].Rcpts, ",") != "s@far.example" {
		t.Fatalf("notifications %+v, want one from <> to the sender", got)
	}
	containsAll(t, got[0].Data, []string{
		"\r\nOriginal-Envelope-Id: QQ314159\r\nReporting-MTA: dns; mx.local.example\r\n",
		"\r\n\r\nOriginal-Recipient: rfc822;Small+x@local.example\r\nFinal-Recipient: rfc822; small@local.example\r\nAction: failed\r\nStatus: 5.7.1\r\n",
		"Diagnostic-Code: X-mailagent; 550 5.7.1 No offers\r\n",
		"Content-Type: message/rfc822\r\n",
		"\r\nthe whole offer\r\n",
	})
	if strings.Contains(got[0].Data, "alice@local.example") {
		t.Errorf("notification names alice:\n%s", got[0].Data)
	}

	for _, params := range []string{"NOTIFY=NEVER", "NOTIFY=SUCCESS ORCPT=rfc822;small@local.example", "NOTIFY=DELAY"} {
		if got := send(params); len(got) != 0 {
			t.Errorf("RCPT %s: %d notifications, want none:\n%s", params, len(got), got[0].Data)
		}
	}
	if got := st.counts(); got != "4,0,0" {
		t.Fatalf("stored alice,small,bob: %s, want 4,0,0", got)
	}
}

// These tests check what an SMTP or LMTP session answers when a local
// delivery fails for one of three recipients (250 and a bounce, 451 for
// the whole message, per-recipient LMTP replies) and what is stored after
// that reply. Two-phase delivery itself is tested without a server in
// smtp/local.

package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp/internal/smtptest"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/router"
)

// Three recipients, the second (small@, quota 100 bytes) failing.
var threeRcpts = []string{"alice@local.example", "small@local.example", "bob@local.example"}

// withLocal replaces the stack's router with one over local, keeping the
// stack's queue stand-in.
func (st *testStack) withLocal(ld *local.Delivery) {
	st.t.Helper()
	r, err := router.New(router.Options{Directory: st.db, Local: ld, Queue: st.queue})
	if err != nil {
		st.t.Fatal(err)
	}
	st.router = r
}

// counts is how many messages each of threeRcpts has in INBOX.
func (st *testStack) counts() string {
	var out []string
	for _, u := range threeRcpts {
		out = append(out, fmt.Sprint(len(st.messages(u, ""))))
	}
	return strings.Join(out, ",")
}

// roomForSmall gives small@ a quota that fits a few small messages.
func (st *testStack) roomForSmall() {
	st.t.Helper()
	if err := st.db.SetQuota(context.Background(), "small@local.example", 10000, 0); err != nil {
		st.t.Fatal(err)
	}
}

// userDir is user's Maildir.
func (st *testStack) userDir(user string) string {
	st.t.Helper()
	u, err := st.db.LookupUser(context.Background(), user)
	if err != nil {
		st.t.Fatal(err)
	}
	return filepath.Join(st.dir, "mail", u.Maildir)
}

// mxSend runs an MX transaction from from to threeRcpts with the given
// replies expected to each RCPT and to the message (dataReply may go on
// with more script lines checking that reply).
func (st *testStack) mxSend(t *testing.T, addr, from string, rcptReplies []string, dataReply, msg string) {
	t.Helper()
	c := dial(t, "tcp", addr)
	script := "S: 220\nC: EHLO client.example\nS: 250\nC: MAIL FROM:<" + from + ">\nS: 250\n"
	for i, r := range threeRcpts {
		script += "C: RCPT TO:<" + r + ">\nS: " + rcptReplies[i] + "\n"
	}
	script += "C: DATA\nS: 354\nR: " + fmt.Sprintf("%q", msg+".\r\n") + "\nS: " + dataReply + "\nC: QUIT\nS: 221"
	c.run(script)
}

// failingReader fails after n bytes, as a disk write error would stop a
// copy midway.
type failingReader struct {
	r   io.Reader
	n   int
	err error // default an I/O error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		if f.err != nil {
			return 0, f.err
		}
		return 0, errors.New("input/output error")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// TestWriteErrorRefusesWholeMessage: writing the second copy fails midway
// over the MX: the message is refused with 451 4.3.0 without the error's
// text, nobody has it and no temporary file is left; a full disk the
// same with 452 4.3.1; the client's retry then leaves exactly one copy
// each.
func TestWriteErrorRefusesWholeMessage(t *testing.T) {
	st := newTestStack(t)
	st.roomForSmall()
	fm := &faultyMaildirs{Store: st.maildirs}
	ld := &local.Delivery{Maildirs: fm, Directory: st.db}
	small := st.userDir("small@local.example")
	fm.stage = func(ctx context.Context, path, folder string, r io.Reader, opts *maildir.DeliverOptions) (*maildir.Staged, error) {
		if filepath.Join(st.dir, "mail", path) == small || path == small {
			r = &failingReader{r: r, n: 20}
		}
		return st.maildirs.Stage(ctx, path, folder, r, opts)
	}
	st.withLocal(ld)
	addr, _ := st.serve(st.options(MX))
	msg := "Subject: three\r\n\r\nhi\r\n"
	st.mxSend(t, addr, "s@far.example", []string{"250", "250", "250"}, "451 4.3.0\nN: input/output", msg)
	if got := st.counts(); got != "0,0,0" {
		t.Fatalf("stored after 451: %s", got)
	}
	for _, u := range threeRcpts {
		if left, _ := os.ReadDir(filepath.Join(st.userDir(u), "tmp")); len(left) != 0 {
			t.Fatalf("%s: tmp/ keeps %d files", u, len(left))
		}
	}
	// Storage exhausted is told apart (RFC 3463 4.3.1), still for the
	// whole message.
	fm.stage = func(ctx context.Context, path, folder string, r io.Reader, opts *maildir.DeliverOptions) (*maildir.Staged, error) {
		if filepath.Join(st.dir, "mail", path) == small {
			r = &failingReader{r: r, n: 20, err: &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}}
		}
		return st.maildirs.Stage(ctx, path, folder, r, opts)
	}
	st.mxSend(t, addr, "s@far.example", []string{"250", "250", "250"}, "452 4.3.1\nN: Maildir", msg)
	if got := st.counts(); got != "0,0,0" {
		t.Fatalf("stored after 452: %s", got)
	}
	fm.stage = nil
	st.mxSend(t, addr, "s@far.example", []string{"250", "250", "250"}, "250", msg)
	if got := st.counts(); got != "1,1,1" {
		t.Fatalf("after the retry: %s", got)
	}
}

// TestQuotaTempFail: with QuotaTempFail a full mailbox is 452 4.2.2 at
// RCPT, and a message that does not fit it after DATA refuses the whole
// message with 452 4.2.2, storing nothing; without it the same message
// is 552 5.2.2 for the whole message when there is no Bouncer to notify
// the sender, again storing nothing.
func TestQuotaTempFail(t *testing.T) {
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", 200) + "\r\n"
	t.Run("at DATA", func(t *testing.T) {
		st := newTestStack(t)
		ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db, QuotaTempFail: true}
		st.withLocal(ld)
		addr, _ := st.serve(st.options(MX))
		st.mxSend(t, addr, "s@far.example", []string{"250", "250", "250"}, "452 4.2.2", big)
		if got := st.counts(); got != "0,0,0" {
			t.Fatalf("stored: %s", got)
		}
		ld.QuotaTempFail = false
		st.mxSend(t, addr, "s@far.example", []string{"250", "250", "250"}, "552 5.2.2", big)
		if got := st.counts(); got != "0,0,0" {
			t.Fatalf("stored without a Bouncer: %s", got)
		}
	})
	t.Run("at RCPT", func(t *testing.T) {
		st := newTestStack(t)
		st.withLocal(&local.Delivery{Maildirs: st.maildirs, Directory: st.db, QuotaTempFail: true})
		addr, _ := st.serve(st.options(MX))
		if _, err := st.maildirs.Deliver(context.Background(), st.userDir("small@local.example"), "INBOX",
			strings.NewReader(strings.Repeat("f", 100)), &maildir.DeliverOptions{Quota: &maildir.Quota{Bytes: 100}}); err != nil {
			t.Fatal(err)
		}
		st.mxSend(t, addr, "s@far.example", []string{"250", "452 4.2.2", "250"}, "250", "Subject: small\r\n\r\nx\r\n")
		if got := st.counts(); got != "1,1,1" {
			t.Fatalf("stored: %s, want the filler in small's and the message in the others'", got)
		}
	})
}

// TestLateFailureNullSender: a notification (MAIL FROM:<>) whose second
// recipient is over quota after DATA is accepted for the others, and no
// notification of the notification is made.
func TestLateFailureNullSender(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", 200) + "\r\n"
	st.mxSend(t, addr, "", []string{"250", "250", "250"}, "250", big)
	if got := st.counts(); got != "1,0,1" {
		t.Fatalf("stored: %s", got)
	}
	if n := len(st.queue.All()); n != 0 {
		t.Fatalf("%d messages queued", n)
	}
}

// failingBody is a queue whose first phase fails, as a full spool would.
type failingBody struct{ smtptest.Recorder }

func (f *failingBody) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	d, _ := f.Recorder.Start(ctx, env)
	return failingBodyDelivery{d}, nil
}

type failingBodyDelivery struct{ mail.Delivery }

func (failingBodyDelivery) Body(ctx context.Context, body mail.Body) error {
	return &mail.Error{Code: 451, EnhancedCode: [3]int{4, 3, 0}, Message: "Queue full, try again later"}
}

// TestRemoteAndLocalLegsTogether: out@local.example forwards to a remote
// address (the queue) and to alice. When alice's copy cannot be written
// the queue keeps nothing, and when the queue's spool cannot take the
// message alice gets nothing: the whole message is 451 either way.
func TestRemoteAndLocalLegsTogether(t *testing.T) {
	msg := "Subject: both\r\n\r\nhi\r\n"
	dialog := `
		S: 220
		C: EHLO client.example
		S: 250
		C: MAIL FROM:<s@far.example>
		S: 250
		C: RCPT TO:<out@local.example>
		S: 250
		C: DATA
		S: 354
		R: ` + fmt.Sprintf("%q", msg+".\r\n") + `
		S: 451 4.3.0
		C: QUIT
		S: 221`
	t.Run("local fails", func(t *testing.T) {
		st := newTestStack(t)
		fm := &faultyMaildirs{Store: st.maildirs}
		ld := &local.Delivery{Maildirs: fm, Directory: st.db}
		fm.stage = func(ctx context.Context, path, folder string, r io.Reader, opts *maildir.DeliverOptions) (*maildir.Staged, error) {
			return st.maildirs.Stage(ctx, path, folder, &failingReader{r: r, n: 10}, opts)
		}
		st.withLocal(ld)
		addr, _ := st.serve(st.options(MX))
		dial(t, "tcp", addr).run(dialog)
		if n := len(st.queue.All()); n != 0 {
			t.Fatalf("%d messages queued", n)
		}
		if n := len(st.messages("alice@local.example", "")); n != 0 {
			t.Fatalf("alice has %d messages", n)
		}
	})
	t.Run("queue fails", func(t *testing.T) {
		st := newTestStack(t)
		q := &failingBody{}
		r, err := router.New(router.Options{Directory: st.db, Local: &local.Delivery{Maildirs: st.maildirs, Directory: st.db}, Queue: q})
		if err != nil {
			t.Fatal(err)
		}
		st.router = r
		addr, _ := st.serve(st.options(MX))
		dial(t, "tcp", addr).run(dialog)
		if n := len(q.All()); n != 0 {
			t.Fatalf("%d messages queued", n)
		}
		if n := len(st.messages("alice@local.example", "")); n != 0 {
			t.Fatalf("alice has %d messages", n)
		}
		if left, _ := os.ReadDir(filepath.Join(st.userDir("alice@local.example"), "tmp")); len(left) != 0 {
			t.Fatalf("alice's tmp/ keeps %d files", len(left))
		}
	})
}

// TestLMTPForwardingFailsWhole: over LMTP a recipient that forwards to
// several destinations and fails for one gets none of the others: team@
// (alice and bob) with bob's copy failing is 451 and alice gets nothing,
// unless alice is also a recipient of her own; a remote destination on a
// queue that cannot take one recipient back fails every recipient with a
// copy there, temporarily, and nothing is queued.
func TestLMTPForwardingFailsWhole(t *testing.T) {
	lmtp := func(t *testing.T, st *testStack, rcpts []string, replies []string) {
		t.Helper()
		addr, _ := st.serve(st.options(LMTP))
		script := "S: 220\nC: LHLO mta.example\nS: 250\nC: MAIL FROM:<s@far.example>\nS: 250\n"
		for _, r := range rcpts {
			script += "C: RCPT TO:<" + r + ">\nS: 250\n"
		}
		script += "C: DATA\nS: 354\nR: " + fmt.Sprintf("%q", "Subject: fan-out\r\n\r\nhi\r\n.\r\n") + "\n"
		for i, r := range rcpts {
			script += "S: " + replies[i] + "\nH: <" + r + ">\n"
		}
		dial(t, "tcp", addr).run(script + "C: QUIT\nS: 221")
	}
	failFor := func(st *testStack, user string) *local.Delivery {
		fm := &faultyMaildirs{Store: st.maildirs}
		ld := &local.Delivery{Maildirs: fm, Directory: st.db}
		dir := st.userDir(user)
		fm.stage = func(ctx context.Context, path, folder string, r io.Reader, opts *maildir.DeliverOptions) (*maildir.Staged, error) {
			if filepath.Join(st.dir, "mail", path) == dir {
				r = &failingReader{r: r, n: 10}
			}
			return st.maildirs.Stage(ctx, path, folder, r, opts)
		}
		st.withLocal(ld)
		return ld
	}
	count := func(st *testStack, user string) int { return len(st.messages(user, "")) }
	t.Run("alias alone", func(t *testing.T) {
		st := newTestStack(t)
		failFor(st, "bob@local.example")
		lmtp(t, st, []string{"team@local.example", "carol@other.example"}, []string{"451 4.3.0", "250"})
		if a, b, c := count(st, "alice@local.example"), count(st, "bob@local.example"), count(st, "carol@other.example"); a != 0 || b != 0 || c != 1 {
			t.Fatalf("alice %d, bob %d, carol %d; want 0, 0, 1", a, b, c)
		}
	})
	t.Run("alias and its member", func(t *testing.T) {
		st := newTestStack(t)
		failFor(st, "bob@local.example")
		lmtp(t, st, []string{"team@local.example", "alice@local.example"}, []string{"451 4.3.0", "250"})
		if a, b := count(st, "alice@local.example"), count(st, "bob@local.example"); a != 1 || b != 0 {
			t.Fatalf("alice %d, bob %d; want 1, 0", a, b)
		}
	})
	t.Run("queue cannot withdraw", func(t *testing.T) {
		st := newTestStack(t)
		if err := st.db.AddForwarding(context.Background(), "out2@local.example", []string{"other@far.example"}); err != nil {
			t.Fatal(err)
		}
		failFor(st, "alice@local.example")
		lmtp(t, st, []string{"out@local.example", "out2@local.example", "carol@other.example"}, []string{"451 4.3.0", "451 4.3.0", "250"})
		if n := len(st.queue.All()); n != 0 {
			t.Fatalf("%d messages queued", n)
		}
		if a, c := count(st, "alice@local.example"), count(st, "carol@other.example"); a != 0 || c != 1 {
			t.Fatalf("alice %d, carol %d; want 0, 1", a, c)
		}
	})
}

// bouncingQueue is a queue stand-in that is also a Bouncer: the
// notifications it prepares are recorded when committed, with the
// failures they report.
type bouncingQueue struct {
	smtptest.Recorder
	mu     sync.Mutex
	failed [][]mail.Failure
}

func (q *bouncingQueue) Bounce(ctx context.Context, env *mail.Envelope, body mail.Body, failed []mail.Failure) (mail.Delivery, error) {
	q.mu.Lock()
	q.failed = append(q.failed, failed)
	q.mu.Unlock()
	d, _ := q.Start(ctx, &mail.Envelope{From: "", Generated: true})
	if err := d.AddRecipient(ctx, env.From); err != nil {
		return nil, err
	}
	return d, d.Body(ctx, mail.BytesBody([]byte("Subject: notification\r\n\r\n")))
}

// TestUserGoneAfterRCPT: the second user is disabled between RCPT and
// DATA: the message is 250 for the others and the sender is notified of
// that user alone, with 550 5.1.1.
func TestUserGoneAfterRCPT(t *testing.T) {
	st := newTestStack(t)
	q := &bouncingQueue{}
	r, err := router.New(router.Options{Directory: st.db, Local: &local.Delivery{Maildirs: st.maildirs, Directory: st.db}, Queue: q})
	if err != nil {
		t.Fatal(err)
	}
	st.router = r
	addr, _ := st.serve(st.options(MX))
	c := dial(t, "tcp", addr)
	script := "S: 220\nC: EHLO client.example\nS: 250\nC: MAIL FROM:<s@far.example>\nS: 250\n"
	for _, r := range threeRcpts {
		script += "C: RCPT TO:<" + r + ">\nS: 250\n"
	}
	c.run(script)
	if err := st.db.SetDisabled(context.Background(), "small@local.example", true); err != nil {
		t.Fatal(err)
	}
	c.run("C: DATA\nS: 354\nR: " + fmt.Sprintf("%q", "Subject: x\r\n\r\nx\r\n.\r\n") + "\nS: 250\nC: QUIT\nS: 221")
	if got := st.counts(); got != "1,0,1" {
		t.Fatalf("stored: %s", got)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.failed) != 1 || len(q.failed[0]) != 1 || q.failed[0][0].Rcpt != "small@local.example" || !strings.Contains(q.failed[0][0].Err.Error(), "550") {
		t.Fatalf("notified of %+v", q.failed)
	}
	if msgs := q.All(); len(msgs) != 1 || msgs[0].From != "" || len(msgs[0].Rcpts) != 1 || msgs[0].Rcpts[0] != "s@far.example" {
		t.Fatalf("queued %+v", msgs)
	}
}

// faultyMaildirs is a maildir.Store whose Stage a test replaces, to
// inject write failures into a local delivery.
type faultyMaildirs struct {
	*maildir.Store
	stage func(ctx context.Context, path, folder string, r io.Reader, opts *maildir.DeliverOptions) (*maildir.Staged, error)
}

func (f *faultyMaildirs) Stage(ctx context.Context, path, folder string, r io.Reader, opts *maildir.DeliverOptions) (*maildir.Staged, error) {
	if f.stage != nil {
		return f.stage(ctx, path, folder, r, opts)
	}
	return f.Store.Stage(ctx, path, folder, r, opts)
}

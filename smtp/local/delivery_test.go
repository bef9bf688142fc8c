package local_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

// threeRcpts are the recipients of every two-phase test; the second is
// the one that fails.
var threeRcpts = []string{"alice@local.example", "small@local.example", "bob@local.example"}

// bigMessage does not fit small@'s 100-byte quota once written, although
// the empty mailbox passes the check at RCPT.
var bigMessage = "Subject: two-phase\r\n\r\n" + strings.Repeat("x", 200) + "\r\n"

// counts is the number of messages in new/ and in tmp/ of each of
// threeRcpts' INBOX, as "new/tmp" per user.
func (e *testStack) counts() string {
	var out []string
	for _, u := range threeRcpts {
		out = append(out, fmt.Sprintf("%d/%d", len(e.files(u, "", "new")), len(e.files(u, "", "tmp"))))
	}
	return strings.Join(out, ",")
}

// start begins a delivery to threeRcpts, every one accepted at RCPT.
func (e *testStack) start(ld *local.Delivery) mail.Delivery {
	e.t.Helper()
	d, err := ld.Start(e.ctx, e.envl)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range threeRcpts {
		if err := d.AddRecipient(e.ctx, r); err != nil {
			e.t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	return d
}

// readNew returns the content of the single message in user's folder.
func (e *testStack) readNew(user, folder string) string {
	e.t.Helper()
	names := e.files(user, folder, "new")
	if len(names) != 1 {
		e.t.Fatalf("%s %q new/: %v, want one message", user, folder, names)
	}
	u, _ := e.db.LookupUser(e.ctx, user)
	b, err := os.ReadFile(filepath.Join(e.dir, "mail", u.Maildir, folder, "new", names[0]))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// An over-quota copy found after DATA fails its recipient alone
// (PartialDelivery) while the others are committed with the envelope in
// their headers.
func TestTwoPhaseOverQuotaFailsOneRecipient(t *testing.T) {
	e := newTestStack(t)
	d := e.start(&local.Delivery{Maildirs: e.maildirs, Directory: e.db})
	pd, ok := d.(mail.PartialDelivery)
	if !ok {
		t.Fatal("local delivery is not a PartialDelivery")
	}
	var status mail.StatusMap
	pd.BodyNonAtomic(e.ctx, &status, mail.BytesBody([]byte(bigMessage)))
	res := status.Results()
	if res["alice@local.example"] != nil || res["bob@local.example"] != nil {
		t.Fatalf("statuses %v: alice and bob must be ready", res)
	}
	var me *mail.Error
	if err := res["small@local.example"]; !errors.As(err, &me) || me.Code != 552 || me.EnhancedCode != [3]int{5, 2, 2} {
		t.Fatalf("small@: %v, want 552 5.2.2", err)
	}
	if got := e.counts(); got != "0/0,0/0,0/0" {
		t.Fatalf("visible before Commit: %s", got)
	}
	if err := d.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.counts(); got != "1/0,0/0,1/0" {
		t.Fatalf("after Commit new/tmp per user: %s, want 1/0,0/0,1/0", got)
	}
	msg := e.readNew("alice@local.example", "")
	if !strings.HasPrefix(msg, "Return-Path: <sender@far.example>\r\nDelivered-To: alice@local.example\r\n") || !strings.HasSuffix(msg, bigMessage) {
		t.Fatalf("alice's copy:\n%s", msg)
	}
}

// Over SMTP (Body) a permanent failure of one copy refuses the message
// and leaves nothing behind.
func TestTwoPhaseBodyOverQuotaRefusesAll(t *testing.T) {
	e := newTestStack(t)
	d := e.start(&local.Delivery{Maildirs: e.maildirs, Directory: e.db, QuotaTempFail: true})
	err := d.Body(e.ctx, mail.BytesBody([]byte(bigMessage)))
	var me *mail.Error
	if !errors.As(err, &me) || me.Code != 452 || me.EnhancedCode != [3]int{4, 2, 2} {
		t.Fatalf("Body: %v, want 452 4.2.2 with QuotaTempFail", err)
	}
	_ = d.Abort(e.ctx)
	if got := e.counts(); got != "0/0,0/0,0/0" {
		t.Fatalf("stored: %s", got)
	}
}

// faultyMaildirs is a maildir.Store whose Stage fails for one Maildir
// path, as a disk failing under one user would.
type faultyMaildirs struct {
	*maildir.Store
	failPath string
}

var errIO = errors.New("input/output error")

func (f *faultyMaildirs) Stage(ctx context.Context, path, folder string, r io.Reader, opts *maildir.DeliverOptions) (*maildir.Staged, error) {
	if path == f.failPath {
		return nil, errIO
	}
	return f.Store.Stage(ctx, path, folder, r, opts)
}

// An I/O failure for the second recipient refuses the whole message, for
// every recipient, and links nothing.
func TestTwoPhaseIOFailureRefusesWholeMessage(t *testing.T) {
	e := newTestStack(t)
	u, err := e.db.LookupUser(e.ctx, "small@local.example")
	if err != nil {
		t.Fatal(err)
	}
	fm := &faultyMaildirs{Store: e.maildirs, failPath: u.Maildir}
	d := e.start(&local.Delivery{Maildirs: fm, Directory: e.db})
	err = d.Body(e.ctx, mail.BytesBody([]byte("Subject: x\r\n\r\nx\r\n")))
	if !errors.Is(err, errIO) || mail.IsPermanent(err) {
		t.Fatalf("Body: %v, want the temporary I/O error", err)
	}
	// A failed Body has discarded every copy: a Commit links nothing.
	_ = d.Commit(e.ctx)
	_ = d.Abort(e.ctx)
	if got := e.counts(); got != "0/0,0/0,0/0" {
		t.Fatalf("stored after an I/O failure: %s", got)
	}

	// Over LMTP the same failure is each recipient's own: the others
	// are delivered.
	d = e.start(&local.Delivery{Maildirs: fm, Directory: e.db})
	var status mail.StatusMap
	d.(mail.PartialDelivery).BodyNonAtomic(e.ctx, &status, mail.BytesBody([]byte("Subject: x\r\n\r\nx\r\n")))
	if res := status.Results(); !errors.Is(res["small@local.example"], errIO) || res["alice@local.example"] != nil || res["bob@local.example"] != nil {
		t.Fatalf("statuses %v", res)
	}
	if err := d.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.counts(); got != "1/0,0/0,1/0" {
		t.Fatalf("stored: %s", got)
	}
}

// Abort after a successful Body leaves nothing in new/ or tmp/.
func TestTwoPhaseAbortLeavesNothing(t *testing.T) {
	e := newTestStack(t)
	if err := e.db.SetQuota(e.ctx, "small@local.example", 10000, 0); err != nil {
		t.Fatal(err)
	}
	d := e.start(&local.Delivery{Maildirs: e.maildirs, Directory: e.db})
	if err := d.Body(e.ctx, mail.BytesBody([]byte(bigMessage))); err != nil {
		t.Fatal(err)
	}
	if err := d.Abort(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.counts(); got != "0/0,0/0,0/0" {
		t.Fatalf("stored after Abort: %s", got)
	}
	if err := d.Commit(e.ctx); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if got := e.counts(); got != "0/0,0/0,0/0" {
		t.Fatalf("stored after Commit following Abort: %s", got)
	}
}

// Unknown and disabled users are refused at RCPT with 550 5.1.1.
func TestUnknownUserAtRCPT(t *testing.T) {
	e := newTestStack(t)
	d, _ := (&local.Delivery{Maildirs: e.maildirs, Directory: e.db}).Start(e.ctx, e.envl)
	var me *mail.Error
	if err := d.AddRecipient(e.ctx, "nobody@local.example"); !errors.As(err, &me) || me.Code != 550 || me.EnhancedCode != [3]int{5, 1, 1} {
		t.Fatalf("nobody@: %v", err)
	}
}

// Spam goes to the Junk folder, or to the folder JunkFolder names.
func TestJunkFolder(t *testing.T) {
	e := newTestStack(t)
	e.envl.Junk = true
	ld := &local.Delivery{Maildirs: e.maildirs, Directory: e.db, JunkFolder: func(u *store.User) string {
		if u.Address == "bob@local.example" {
			return "INBOX"
		}
		return ""
	}}
	d, _ := ld.Start(e.ctx, e.envl)
	for _, r := range []string{"alice@local.example", "bob@local.example"} {
		if err := d.AddRecipient(e.ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Body(e.ctx, mail.BytesBody([]byte("Subject: spam\r\n\r\nbuy\r\n"))); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.files("alice@local.example", "", "new")); n != 0 {
		t.Errorf("alice's INBOX holds %d messages, want the spam in Junk", n)
	}
	if msg := e.readNew("alice@local.example", ".Junk"); !strings.HasSuffix(msg, "buy\r\n") {
		t.Errorf("alice's Junk: %q", msg)
	}
	if msg := e.readNew("bob@local.example", ""); !strings.HasSuffix(msg, "buy\r\n") {
		t.Errorf("bob's INBOX: %q", msg)
	}
}

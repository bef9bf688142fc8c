package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp/internal/smtptest"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

// testStack is a directory on SQLite and a Maildir base, both in a temporary
// directory.
type testStack struct {
	t        *testing.T
	dir      string
	db       *store.SQL
	maildirs *maildir.Store
	queue    *smtptest.Recorder
	ctx      context.Context
	envl     *mail.Envelope
}

func newTestStack(t *testing.T) *testStack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, store.DriverSQLite, filepath.Join(dir, "directory.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.AddDomain(ctx, "local.example"))
	for _, u := range []string{"alice@local.example", "bob@local.example"} {
		must(db.AddUser(ctx, &store.User{Address: u, PasswordHash: "x"}))
	}
	must(db.AddUser(ctx, &store.User{Address: "small@local.example", PasswordHash: "x", QuotaBytes: 100}))
	md, err := maildir.New(filepath.Join(dir, "mail"), &maildir.Options{Hostname: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	return &testStack{t: t, dir: dir, db: db, maildirs: md, queue: &smtptest.Recorder{}, ctx: ctx,
		envl: &mail.Envelope{ID: "T1", From: "sender@far.example"}}
}

// files lists the file names in user's Maildir sub (new, tmp, cur) of
// folder ("" for INBOX, else its Maildir++ name such as ".Junk").
func (e *testStack) files(user, folder, sub string) []string {
	e.t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.userDir(user), folder, sub))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	var out []string
	for _, d := range ents {
		out = append(out, d.Name())
	}
	return out
}

// userDir is user's Maildir.
func (e *testStack) userDir(user string) string {
	e.t.Helper()
	u, err := e.db.LookupUser(e.ctx, user)
	if err != nil {
		e.t.Fatal(err)
	}
	return filepath.Join(e.dir, "mail", u.Maildir)
}

// roomForSmall gives small@ a quota that fits a few small messages.
func (e *testStack) roomForSmall() {
	e.t.Helper()
	if err := e.db.SetQuota(e.ctx, "small@local.example", 10000, 0); err != nil {
		e.t.Fatal(err)
	}
}

// messages returns the content of every message in user's folder (""
// for INBOX), new/ and cur/, in name order.
func (e *testStack) messages(user, folder string) []string {
	e.t.Helper()
	base := e.userDir(user)
	if folder != "" {
		base = filepath.Join(base, "."+folder)
	}
	return smtptest.Messages(e.t, base)
}

// deliverThree delivers msg from from to threeRcpts, all or nothing as
// over SMTP; any failure fails the test.
func deliverThree(t *testing.T, ld *local.Delivery, from, msg string) {
	t.Helper()
	smtptest.Deliver(t, ld, &mail.Envelope{ID: "R1", From: from, Hostname: "mx.local.example"}, threeRcpts, msg)
}

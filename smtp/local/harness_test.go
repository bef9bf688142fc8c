package local_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/mailagent/mailagent/maildir"
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
	queue    *recordingTarget
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
	return &testStack{t: t, dir: dir, db: db, maildirs: md, queue: &recordingTarget{}, ctx: ctx,
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
	var names []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(base, sub))
		if err != nil && !os.IsNotExist(err) {
			e.t.Fatal(err)
		}
		for _, d := range ents {
			names = append(names, filepath.Join(base, sub, d.Name()))
		}
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// recordingTarget stands in for the outbound queue: it keeps committed
// messages in memory.
type recordingTarget struct {
	mu   sync.Mutex
	msgs []recorded
}

type recorded struct {
	from  string
	rcpts []string
	data  string
}

func (r *recordingTarget) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	return &recordingDelivery{r: r, env: env}, nil
}

func (r *recordingTarget) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.msgs...)
}

type recordingDelivery struct {
	r     *recordingTarget
	env   *mail.Envelope
	rcpts []string
	data  string
}

func (d *recordingDelivery) AddRecipient(ctx context.Context, rcpt string) error {
	d.rcpts = append(d.rcpts, rcpt)
	return nil
}

func (d *recordingDelivery) Body(ctx context.Context, body mail.Body) error {
	rc, err := body.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	d.data = string(b)
	return err
}

func (d *recordingDelivery) Commit(ctx context.Context) error {
	d.r.mu.Lock()
	d.r.msgs = append(d.r.msgs, recorded{from: d.env.From, rcpts: d.rcpts, data: d.data})
	d.r.mu.Unlock()
	return nil
}

func (d *recordingDelivery) Abort(ctx context.Context) error { return nil }

// deliverThree delivers msg from from to threeRcpts, all or nothing as
// over SMTP; any failure fails the test.
func deliverThree(t *testing.T, ld *local.Delivery, from, msg string) {
	t.Helper()
	ctx := context.Background()
	d, err := ld.Start(ctx, &mail.Envelope{ID: "R1", From: from, Hostname: "mx.local.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range threeRcpts {
		if err := d.AddRecipient(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Body(ctx, mail.BytesBody([]byte(msg))); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

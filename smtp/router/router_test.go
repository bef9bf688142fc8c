package router_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

// fakeTarget records every message it is given: the recipients added,
// the body, and whether it was committed or aborted. fail names the
// recipients whose copy fails after DATA, with that error.
type fakeTarget struct {
	name string
	fail map[string]error

	mu   sync.Mutex
	msgs []*fakeDelivery
}

func (f *fakeTarget) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := &fakeDelivery{t: f, env: env}
	f.msgs = append(f.msgs, d)
	return d, nil
}

// committed returns the recipients of each committed message, as
// comma-separated lists.
func (f *fakeTarget) committed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, d := range f.msgs {
		if d.state == "committed" {
			out = append(out, strings.Join(d.rcpts, ","))
		}
	}
	return out
}

type fakeDelivery struct {
	t     *fakeTarget
	env   *mail.Envelope
	rcpts []string
	body  string
	state string
}

func (d *fakeDelivery) AddRecipient(ctx context.Context, rcpt string) error {
	d.rcpts = append(d.rcpts, rcpt)
	return nil
}

func (d *fakeDelivery) Body(ctx context.Context, body mail.Body) error {
	r, err := body.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	d.body = string(b)
	for _, rc := range d.rcpts {
		if e := d.t.fail[rc]; e != nil {
			return e
		}
	}
	return err
}

func (d *fakeDelivery) Commit(ctx context.Context) error {
	d.t.mu.Lock()
	defer d.t.mu.Unlock()
	if d.state == "" {
		d.state = "committed"
	}
	return nil
}

func (d *fakeDelivery) Abort(ctx context.Context) error {
	d.t.mu.Lock()
	defer d.t.mu.Unlock()
	d.state = "aborted"
	return nil
}

// partialTarget is a fakeTarget whose deliveries report each
// recipient's own status, as local.Delivery and LMTP do.
type partialTarget struct{ fakeTarget }

func (p *partialTarget) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	d, _ := p.fakeTarget.Start(ctx, env)
	return partialDelivery{d.(*fakeDelivery)}, nil
}

type partialDelivery struct{ *fakeDelivery }

func (d partialDelivery) BodyNonAtomic(ctx context.Context, status mail.StatusCollector, body mail.Body) {
	r, _ := body.Open()
	b, _ := io.ReadAll(r)
	r.Close()
	d.body = string(b)
	for _, rc := range d.rcpts {
		status.SetStatus(rc, d.t.fail[rc])
	}
}

// bouncingQueue is a queue that also takes bounces, recording the
// recipients each one reports.
type bouncingQueue struct {
	fakeTarget
	bounced [][]mail.Failure
}

func (q *bouncingQueue) Bounce(ctx context.Context, env *mail.Envelope, body mail.Body, failed []mail.Failure) (mail.Delivery, error) {
	q.mu.Lock()
	q.bounced = append(q.bounced, failed)
	q.mu.Unlock()
	d, _ := q.fakeTarget.Start(ctx, &mail.Envelope{ID: env.ID + ".dsn", Generated: true})
	if err := d.AddRecipient(ctx, env.From); err != nil {
		return nil, err
	}
	return d, d.Body(ctx, mail.BytesBody([]byte("Subject: Undelivered Mail\r\n\r\n")))
}

// fixture is a directory on SQLite in a temporary directory and the
// router's fake targets.
type fixture struct {
	t          *testing.T
	ctx        context.Context
	db         *store.SQL
	local      *partialTarget
	queue      *bouncingQueue
	hops       map[string]*fakeTarget
	transports router.Transports
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.DriverSQLite, filepath.Join(t.TempDir(), "directory.db"), nil)
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
	must(db.AddDomain(ctx, "catch.example"))
	must(db.AddDomain(ctx, "other.example"))
	for _, u := range []string{"alice@local.example", "bob@local.example", "postmaster@catch.example", "carol@other.example"} {
		must(db.AddUser(ctx, &store.User{Address: u, PasswordHash: "x"}))
	}
	must(db.AddUser(ctx, &store.User{Address: "gone@local.example", PasswordHash: "x", Disabled: true}))
	must(db.AddForwarding(ctx, "team@local.example", []string{"alice@local.example", "bob@local.example"}))
	must(db.AddForwarding(ctx, "out@local.example", []string{"someone@far.example", "alice@local.example"}))
	must(db.AddForwarding(ctx, "@catch.example", []string{"postmaster@catch.example"}))
	must(db.SetTransport(ctx, "other.example", "lmtp:[127.0.0.1]:2424"))
	must(db.SetTransport(ctx, "relayed.example", "smtp:[192.0.2.1]:587"))
	must(db.SetTransport(ctx, "mx.example", "smtp:"))
	must(db.SetTransport(ctx, "refused.example", "error:no mail for this domain"))
	f := &fixture{t: t, ctx: ctx, db: db,
		local: &partialTarget{fakeTarget{name: "local"}},
		queue: &bouncingQueue{fakeTarget: fakeTarget{name: "queue"}},
		hops:  map[string]*fakeTarget{},
	}
	var mu sync.Mutex
	f.transports = router.TransportsFunc(func(ctx context.Context, tr store.Transport) (mail.Target, error) {
		mu.Lock()
		defer mu.Unlock()
		k := tr.String()
		if f.hops[k] == nil {
			f.hops[k] = &fakeTarget{name: k}
		}
		return f.hops[k], nil
	})
	return f
}

func (f *fixture) router() *router.Router {
	f.t.Helper()
	r, err := router.New(router.Options{Directory: f.db, Local: f.local, Queue: f.queue, Transports: f.transports})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// send routes one message from the unauthenticated sender@far.example
// (an MX client) to rcpts and returns each RCPT's reply and Body's.
func (f *fixture) send(env *mail.Envelope, rcpts ...string) (rcptErrs []error, bodyErr error) {
	f.t.Helper()
	d, err := f.router().Start(f.ctx, env)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range rcpts {
		rcptErrs = append(rcptErrs, d.AddRecipient(f.ctx, r))
	}
	if bodyErr = d.Body(f.ctx, mail.BytesBody([]byte(testMessage))); bodyErr != nil {
		_ = d.Abort(f.ctx)
		return rcptErrs, bodyErr
	}
	if err := d.Commit(f.ctx); err != nil {
		f.t.Fatalf("Commit: %v", err)
	}
	return rcptErrs, nil
}

// deliver is send for a message every recipient must take.
func (f *fixture) deliver(env *mail.Envelope, rcpts ...string) {
	f.t.Helper()
	errs, body := f.send(env, rcpts...)
	noErrors(f.t, errs, body)
}

const testMessage = "From: sender@far.example\r\nSubject: routed\r\n\r\nhello\r\n"

func mxEnvelope() *mail.Envelope {
	return &mail.Envelope{ID: "R1", From: "sender@far.example"}
}

func wantReply(t *testing.T, what string, err error, code int, enh [3]int) {
	t.Helper()
	var me *mail.Error
	if !errors.As(err, &me) || me.Code != code || me.EnhancedCode != enh {
		t.Errorf("%s: %v, want %d %d.%d.%d", what, err, code, enh[0], enh[1], enh[2])
	}
}

func noErrors(t *testing.T, errs []error, body error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("RCPT %d: %v", i, err)
		}
	}
	if body != nil {
		t.Fatalf("Body: %v", body)
	}
}

func TestRouteLocalMailbox(t *testing.T) {
	f := newFixture(t)
	f.deliver(mxEnvelope(), "alice@local.example", "Bob@Local.Example")
	if got := f.local.committed(); !slices.Equal(got, []string{"alice@local.example,bob@local.example"}) {
		t.Fatalf("local got %q, want one copy for alice and bob", got)
	}
	if f.local.msgs[0].body != testMessage {
		t.Errorf("local body %q", f.local.msgs[0].body)
	}
	if got := f.queue.committed(); len(got) != 0 {
		t.Errorf("queue got %q", got)
	}
}

func TestRouteAliasToRemoteGoesToQueue(t *testing.T) {
	f := newFixture(t)
	f.deliver(mxEnvelope(), "out@local.example", "team@local.example")
	if got := f.queue.committed(); !slices.Equal(got, []string{"someone@far.example"}) {
		t.Errorf("queue got %q, want the remote destination of out@", got)
	}
	// alice is a destination of both aliases: one copy.
	if got := f.local.committed(); !slices.Equal(got, []string{"alice@local.example,bob@local.example"}) {
		t.Errorf("local got %q", got)
	}
}

func TestRouteCatchAll(t *testing.T) {
	f := newFixture(t)
	f.deliver(mxEnvelope(), "whoever@catch.example")
	if got := f.local.committed(); !slices.Equal(got, []string{"postmaster@catch.example"}) {
		t.Errorf("local got %q, want the catch-all's mailbox", got)
	}
}

func TestRouteSubaddress(t *testing.T) {
	f := newFixture(t)
	f.deliver(mxEnvelope(), "alice+lists@local.example")
	if got := f.local.committed(); !slices.Equal(got, []string{"alice@local.example"}) {
		t.Errorf("local got %q, want alice's mailbox", got)
	}
}

func TestRouteTransportTable(t *testing.T) {
	f := newFixture(t)
	errs, body := f.send(mxEnvelope(), "carol@other.example", "x@relayed.example", "y@mx.example", "z@refused.example")
	noErrors(t, errs[:3], body)
	wantReply(t, "RCPT to an error: transport", errs[3], 550, [3]int{5, 0, 0})
	if !strings.Contains(errs[3].Error(), "no mail for this domain") {
		t.Errorf("error: transport reply %q lacks its text", errs[3])
	}
	if got := f.hops["lmtp:127.0.0.1:2424"].committed(); !slices.Equal(got, []string{"carol@other.example"}) {
		t.Errorf("LMTP hop got %q (a local user of a domain routed by LMTP)", got)
	}
	if got := f.hops["smtp:[192.0.2.1]:587"].committed(); !slices.Equal(got, []string{"x@relayed.example"}) {
		t.Errorf("SMTP hop got %q", got)
	}
	if got := f.queue.committed(); !slices.Equal(got, []string{"y@mx.example"}) {
		t.Errorf("queue got %q, want y@mx.example (smtp: without a host is MX routing)", got)
	}
	if got := f.local.committed(); len(got) != 0 {
		t.Errorf("local got %q", got)
	}
}

func TestRouteUnknownUser(t *testing.T) {
	f := newFixture(t)
	d, _ := f.router().Start(f.ctx, mxEnvelope())
	wantReply(t, "unknown user", d.AddRecipient(f.ctx, "nobody@local.example"), 550, [3]int{5, 1, 1})
	wantReply(t, "disabled user", d.AddRecipient(f.ctx, "gone@local.example"), 550, [3]int{5, 1, 1})
	wantReply(t, "bad address", d.AddRecipient(f.ctx, "no-at-sign"), 553, [3]int{5, 1, 3})
	_ = d.Abort(f.ctx)
	if len(f.local.msgs)+len(f.queue.msgs) != 0 {
		t.Errorf("a refused recipient started a delivery: local %d, queue %d", len(f.local.msgs), len(f.queue.msgs))
	}
}

func TestRouteRelay(t *testing.T) {
	f := newFixture(t)
	d, _ := f.router().Start(f.ctx, mxEnvelope())
	wantReply(t, "relay from an MX client", d.AddRecipient(f.ctx, "someone@far.example"), 554, [3]int{5, 7, 1})
	_ = d.Abort(f.ctx)

	// An authenticated client, and the system's own mail, may relay.
	for _, env := range []*mail.Envelope{
		{ID: "R2", From: "alice@local.example", AuthUser: "alice@local.example"},
		{ID: "R3", Generated: true},
	} {
		f.deliver(env, "someone@far.example")
	}
	if got := f.queue.committed(); !slices.Equal(got, []string{"someone@far.example", "someone@far.example"}) {
		t.Errorf("queue got %q", got)
	}

	// Without a queue, remote mail is refused even to them.
	r, err := router.New(router.Options{Directory: f.db, Local: f.local})
	if err != nil {
		t.Fatal(err)
	}
	d, _ = r.Start(f.ctx, &mail.Envelope{ID: "R4", AuthUser: "alice@local.example"})
	wantReply(t, "remote without a queue", d.AddRecipient(f.ctx, "someone@far.example"), 550, [3]int{5, 7, 1})
}

// A temporary failure of one leg refuses the whole message: no leg is
// committed.
func TestRouteTemporaryFailureAbortsEveryLeg(t *testing.T) {
	f := newFixture(t)
	f.queue.fail = map[string]error{"someone@far.example": &mail.Error{Code: 451, EnhancedCode: [3]int{4, 3, 0}, Message: "spool full"}}
	errs, body := f.send(mxEnvelope(), "alice@local.example", "out@local.example")
	noErrors(t, errs, nil)
	wantReply(t, "Body", body, 451, [3]int{4, 3, 0})
	if got := append(f.local.committed(), f.queue.committed()...); len(got) != 0 {
		t.Errorf("committed %q after a temporary failure", got)
	}
	for _, d := range append(f.local.msgs, f.queue.msgs...) {
		if d.state != "aborted" {
			t.Errorf("a leg for %v was left %q", d.rcpts, d.state)
		}
	}
}

// A permanent failure of one local recipient found after DATA is
// bounced for that recipient alone; the others are delivered.
func TestRoutePermanentFailureIsBounced(t *testing.T) {
	f := newFixture(t)
	full := &mail.Error{Code: 552, EnhancedCode: [3]int{5, 2, 2}, Message: "Mailbox full"}
	f.local.fail = map[string]error{"bob@local.example": full}
	f.deliver(mxEnvelope(), "alice@local.example", "bob@local.example", "postmaster@catch.example")
	if len(f.queue.bounced) != 1 || len(f.queue.bounced[0]) != 1 || f.queue.bounced[0][0].Rcpt != "bob@local.example" || f.queue.bounced[0][0].Err != full {
		t.Fatalf("bounced %+v, want bob's failure alone", f.queue.bounced)
	}
	if got := f.queue.committed(); !slices.Equal(got, []string{"sender@far.example"}) {
		t.Errorf("queue got %q, want the bounce to the sender", got)
	}
	if got := f.local.committed(); len(got) != 1 {
		t.Errorf("local got %q", got)
	}
}

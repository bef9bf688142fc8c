package queue_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/queue"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

const password = "correct horse battery"

// stack is one mail system as an application wires it: directory,
// Maildirs, router, and for A the queue and a submission server, for B
// an MX server.
type stack struct {
	t      *testing.T
	dir    string
	db     *store.SQL
	md     *maildir.Store
	router *router.Router
	queue  *queue.Queue
	now    *fakeNow
	srv    *smtp.Server
}

type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeNow) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func newStack(t *testing.T, domain string, users ...string) *stack {
	t.Helper()
	ctx := context.Background()
	st := &stack{t: t, dir: t.TempDir()}
	db, err := store.Open(ctx, store.DriverSQLite, filepath.Join(st.dir, "directory.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st.db = db
	params := auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}
	hash, err := params.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddDomain(ctx, domain); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := db.AddUser(ctx, &store.User{Address: u, PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
	}
	md, err := maildir.New(filepath.Join(st.dir, "mail"), &maildir.Options{Hostname: domain})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	st.md = md
	st.router, err = router.New(router.Options{Directory: db, Local: &local.Delivery{Maildirs: md, Directory: db}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// withQueue gives the stack an outbound queue that reaches the MX
// servers of the test domains on port.
func (st *stack) withQueue(port int, r dnsauth.Resolver) {
	t := st.t
	c, err := outbound.New(outbound.Options{Hostname: "mx.a.test", Resolver: r, Port: port,
		CommandTimeout: 10 * time.Second, DataTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st.now = &fakeNow{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	// Notifications to local senders go through the router to their
	// Maildirs; to others, through the router to the queue.
	st.queue, err = queue.New(queue.WithClock(queue.Options{Dir: filepath.Join(st.dir, "queue"), Courier: queue.Outbound(c),
		Hostname: "mx.a.test",
		BounceTarget: func(q *queue.Queue) (mail.Target, error) {
			r, err := router.New(router.Options{Directory: st.db,
				Local: &local.Delivery{Maildirs: st.md, Directory: st.db}, Queue: q, Transports: q})
			st.router = r
			return r, err
		}}, st.now.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.queue.Close() })
}

// serve runs a server for role on addr.
func (st *stack) serve(role smtp.Role, addr string) {
	t := st.t
	opts := smtp.Options{Role: role, Hostname: "mx." + map[smtp.Role]string{smtp.MX: "b.test", smtp.Submission: "a.test"}[role],
		Target: st.router, SpoolDir: st.dir}
	if role == smtp.Submission {
		certFile, keyFile, err := auth.SelfSigned(st.dir, "mx.a.test")
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		opts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		opts.Authenticator = &auth.Authenticator{Users: st.db, Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1},
			Throttle: auth.NewThrottle(auth.ThrottleConfig{BaseDelay: -1})}
		opts.Directory = st.db
	}
	srv, err := smtp.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	st.srv = srv
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

func (st *stack) stop() { st.srv.Close() }

// mailbox returns the messages in user's INBOX, read from the Maildir.
func (st *stack) mailbox(user string) []string {
	st.t.Helper()
	u, err := st.db.LookupUser(context.Background(), user)
	if err != nil {
		st.t.Fatal(err)
	}
	var out []string
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(st.dir, "mail", u.Maildir, sub)
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			st.t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				st.t.Fatal(err)
			}
			out = append(out, string(b))
		}
	}
	return out
}

func (st *stack) runDue() {
	st.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.queue.RunDue(ctx); err != nil {
		st.t.Fatal(err)
	}
}

// submit sends a message as alice through A's submission server.
func submit(t *testing.T, addr, to, subject string) {
	t.Helper()
	c, err := gosmtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice@a.test", password)); err != nil {
		t.Fatal(err)
	}
	msg := "From: alice@a.test\r\nTo: " + to + "\r\nSubject: " + subject + "\r\n\r\nHello from A.\r\n"
	if err := c.SendMail("alice@a.test", []string{to}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	c.Quit()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestTwoStacks: a user of a.test submits to bob@b.test; A's queue
// delivers to B's MX, which files the message in bob's Maildir. With B
// down, A retries on schedule; B's 550 and a null MX come back to the
// sender as notifications in her own Maildir.
func TestTwoStacks(t *testing.T) {
	bAddr := freeAddr(t)
	_, bPort, _ := net.SplitHostPort(bAddr)
	var port int
	for _, c := range bPort {
		port = port*10 + int(c-'0')
	}
	r := &dnsauth.MockResolver{
		MX: map[string][]*net.MX{
			"b.test":    {{Host: "mx.b.test.", Pref: 10}},
			"null.test": {{Host: ".", Pref: 0}},
		},
		IP: map[string][]net.IP{"mx.b.test": {net.ParseIP("127.0.0.1")}},
	}
	a := newStack(t, "a.test", "alice@a.test")
	a.withQueue(port, r)
	aAddr := freeAddr(t)
	a.serve(smtp.Submission, aAddr)
	b := newStack(t, "b.test", "bob@b.test")
	b.serve(smtp.MX, bAddr)

	// Delivered.
	submit(t, aAddr, "bob@b.test", "first")
	a.runDue()
	got := b.mailbox("bob@b.test")
	if len(got) != 1 || !strings.Contains(got[0], "Subject: first") || !strings.Contains(got[0], "Hello from A.") {
		t.Fatalf("bob's mailbox: %q", got)
	}

	// B down: deferred, retried on schedule, delivered once B is back.
	b.stop()
	submit(t, aAddr, "bob@b.test", "second")
	a.runDue()
	n := 0
	a.queue.List(context.Background(), func(in *queue.Info) error {
		n++
		if in.Attempts != 1 || in.Recipients[0].Err == nil || in.Recipients[0].Err.Code/100 != 4 {
			t.Errorf("deferred message: %+v", in)
		}
		return nil
	})
	if n != 1 {
		t.Fatalf("%d messages queued while B is down", n)
	}
	b.serve(smtp.MX, bAddr)
	a.now.Advance(4 * time.Minute)
	a.runDue()
	if len(b.mailbox("bob@b.test")) != 1 {
		t.Fatal("retried before the backoff")
	}
	a.now.Advance(time.Minute)
	a.runDue()
	if got := b.mailbox("bob@b.test"); len(got) != 2 {
		t.Fatalf("after retry, bob has %d messages", len(got))
	}

	// B refuses the recipient: alice gets a notification naming him
	// and B's reply.
	submit(t, aAddr, "nobody@b.test", "third")
	a.runDue()
	dsns := a.mailbox("alice@a.test")
	if len(dsns) != 1 {
		t.Fatalf("alice has %d messages, want one notification", len(dsns))
	}
	for _, want := range []string{"multipart/report", "Final-Recipient: rfc822; nobody@b.test", "Action: failed",
		"Status: 5.1.1", "Remote-MTA: dns; mx.b.test", "Diagnostic-Code: smtp; 550 5.1.1", "Subject: third"} {
		if !strings.Contains(dsns[0], want) {
			t.Errorf("notification lacks %q:\n%s", want, dsns[0])
		}
	}

	// Null MX: a notification at once, no attempt.
	submit(t, aAddr, "x@null.test", "fourth")
	a.runDue()
	dsns = a.mailbox("alice@a.test")
	if len(dsns) != 2 {
		t.Fatalf("alice has %d messages, want two notifications", len(dsns))
	}
	var null string
	for _, d := range dsns {
		if strings.Contains(d, "x@null.test") {
			null = d
		}
	}
	if !strings.Contains(null, "Status: 5.1.10") || !strings.Contains(null, "Subject: fourth") {
		t.Errorf("null MX notification:\n%s", null)
	}
	n = 0
	a.queue.List(context.Background(), func(*queue.Info) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d messages left in A's queue", n)
	}
}

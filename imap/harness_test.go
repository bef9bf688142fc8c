package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

const testPassword = "correct horse battery"

// testStack is a directory, a Maildir store and an authenticator as an
// application wires them, on temporary storage.
type testStack struct {
	t        testing.TB
	dir      string
	db       *store.SQL
	maildirs *maildir.Store
	auth     *auth.Authenticator
	tls      *tls.Config
	certFile string
	delays   atomic.Int32 // failed logins the Authenticator delayed
}

func newTestStack(t testing.TB) *testStack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, store.DriverSQLite, filepath.Join(dir, "directory.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	params := auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}
	hash, err := params.Hash(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	must(t, db.AddDomain(ctx, "local.example"))
	for _, u := range []string{"alice@local.example", "bob@local.example"} {
		must(t, db.AddUser(ctx, &store.User{Address: u, PasswordHash: hash}))
	}
	must(t, db.AddUser(ctx, &store.User{Address: "small@local.example", PasswordHash: hash, QuotaBytes: 2000}))
	md, err := maildir.New(filepath.Join(dir, "mail"), &maildir.Options{Hostname: "test", PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	st := &testStack{t: t, dir: dir, db: db, maildirs: md}
	st.auth = &auth.Authenticator{
		Users:  db,
		Argon2: params,
		// Delays of a nanosecond: applied, and counted from the
		// Authenticator's log, without the test waiting.
		Throttle: auth.NewThrottle(auth.ThrottleConfig{BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond}),
		Logger:   slog.New(delayCounter{&st.delays}),
	}
	certFile, keyFile, err := auth.SelfSigned(dir, "imap.test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	st.tls = &tls.Config{Certificates: []tls.Certificate{cert}}
	st.certFile = certFile
	return st
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// options returns server options over this stack: STARTTLS, and
// passwords allowed without TLS so that dialogs stay readable.
func (st *testStack) options() Options {
	return Options{Store: st.maildirs, Authenticator: st.auth, TLSConfig: st.tls, AllowInsecureAuth: true}
}

// serve starts a server with opts on 127.0.0.1:0 and returns its address;
// the server is closed when the test ends.
func (st *testStack) serve(opts Options) (*Server, string) {
	st.t.Helper()
	srv, err := NewServer(opts)
	if err != nil {
		st.t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	st.t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			st.t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return srv, l.Addr().String()
}

// deliver stores a message for user as an MDA does.
func (st *testStack) deliver(user, folder, msg string, flags ...string) {
	st.t.Helper()
	local, domain, _ := strings.Cut(user, "@")
	path, err := st.maildirs.UserPath(domain, local)
	must(st.t, err)
	ctx := context.Background()
	_, err = st.maildirs.Deliver(ctx, path, folder, strings.NewReader(msg), &maildir.DeliverOptions{Flags: flags, CreateFolder: true})
	must(st.t, err)
	// UIDs are given when a message is first seen; look now so that they
	// follow the order of delivery.
	md, err := st.maildirs.Open(ctx, path)
	must(st.t, err)
	defer md.Close()
	f, err := md.Folder(ctx, folder)
	must(st.t, err)
	_, err = f.Snapshot(ctx)
	must(st.t, err)
}

// client is a raw IMAP dialog over TCP.
type client struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	ntag int
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return greeted(t, c)
}

func dialTLS(t *testing.T, addr string) *client {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	return greeted(t, c)
}

// greeted wraps a new connection and reads the server's greeting.
func greeted(t *testing.T, c net.Conn) *client {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	if g := cl.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return cl
}

// line reads one line (without CRLF), failing the test after 10 s.
func (cl *client) line() string {
	cl.t.Helper()
	cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := cl.r.ReadString('\n')
	if err != nil {
		cl.t.Fatalf("reading reply: %v (got %q)", err, s)
	}
	return strings.TrimRight(s, "\r\n")
}

func (cl *client) send(s string) {
	cl.t.Helper()
	if _, err := fmt.Fprintf(cl.c, "%s\r\n", s); err != nil {
		cl.t.Fatal(err)
	}
}

// cmd sends a tagged command and returns the untagged lines and the
// tagged reply (without the tag).
func (cl *client) cmd(format string, args ...any) ([]string, string) {
	cl.t.Helper()
	cl.ntag++
	tag := fmt.Sprintf("a%d", cl.ntag)
	cl.send(tag + " " + fmt.Sprintf(format, args...))
	return cl.until(tag)
}

func (cl *client) until(tag string) ([]string, string) {
	cl.t.Helper()
	var lines []string
	for {
		l := cl.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return lines, rest
		}
		lines = append(lines, l)
	}
}

// ok runs a command that must succeed and returns its untagged lines.
func (cl *client) ok(format string, args ...any) []string {
	cl.t.Helper()
	lines, st := cl.cmd(format, args...)
	if !strings.HasPrefix(st, "OK") {
		cl.t.Fatalf("%s: %s (untagged %q)", fmt.Sprintf(format, args...), st, lines)
	}
	return lines
}

// expect runs a command whose tagged reply must start with want.
func (cl *client) expect(want, format string, args ...any) []string {
	cl.t.Helper()
	lines, st := cl.cmd(format, args...)
	if !strings.HasPrefix(st, want) {
		cl.t.Fatalf("%s: got %q, want %q... (untagged %q)", fmt.Sprintf(format, args...), st, want, lines)
	}
	return lines
}

func (cl *client) login(user string) {
	cl.t.Helper()
	cl.ok("LOGIN %s %q", user, testPassword)
}

// has reports whether one of lines contains all of subs.
func has(lines []string, subs ...string) bool {
	for _, l := range lines {
		all := true
		for _, s := range subs {
			if !strings.Contains(l, s) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func wantLine(t *testing.T, lines []string, subs ...string) {
	t.Helper()
	if !has(lines, subs...) {
		t.Fatalf("no line with %q in %q", subs, lines)
	}
}

func netDial(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// startTLS runs STARTTLS and continues the dialog over TLS.
func (cl *client) startTLS() {
	cl.t.Helper()
	cl.ok("STARTTLS")
	tc := tls.Client(cl.c, &tls.Config{InsecureSkipVerify: true})
	must(cl.t, tc.Handshake())
	cl.c = tc
	cl.r.Reset(tc)
}

// delayCounter is a slog.Handler counting the failed logins logged with
// a failure delay.
type delayCounter struct{ n *atomic.Int32 }

func (delayCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h delayCounter) WithAttrs([]slog.Attr) slog.Handler     { return h }
func (h delayCounter) WithGroup(string) slog.Handler          { return h }
func (h delayCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "login failed" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "delay" && a.Value.Kind() == slog.KindDuration && a.Value.Duration() > 0 {
			h.n.Add(1)
		}
		return true
	})
	return nil
}

package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp/internal/smtptest"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

const testPassword = "correct horse battery"

// testStack is a directory, a Maildir base, an authenticator and a
// router as an application wires them, on temporary storage.
type testStack struct {
	t        testing.TB
	dir      string
	db       *store.SQL
	maildirs *maildir.Store
	queue    *smtptest.Recorder
	local    *local.Delivery
	router   *router.Router
	auth     *auth.Authenticator
	tls      *tls.Config
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
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.AddDomain(ctx, "local.example"))
	must(db.AddDomain(ctx, "other.example"))
	for _, u := range []string{"alice@local.example", "bob@local.example", "carol@other.example"} {
		must(db.AddUser(ctx, &store.User{Address: u, PasswordHash: hash}))
	}
	must(db.AddUser(ctx, &store.User{Address: "small@local.example", PasswordHash: hash, QuotaBytes: 100}))
	must(db.AddForwarding(ctx, "team@local.example", []string{"alice@local.example", "bob@local.example"}))
	must(db.AddForwarding(ctx, "both@local.example", []string{"alice@local.example", "team@local.example"}))
	must(db.AddForwarding(ctx, "out@local.example", []string{"someone@far.example", "alice@local.example"}))
	must(db.AddForwarding(ctx, "sales@other.example", []string{"alice@local.example"}))

	md, err := maildir.New(filepath.Join(dir, "mail"), &maildir.Options{Hostname: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	st := &testStack{t: t, dir: dir, db: db, maildirs: md, queue: &smtptest.Recorder{}}
	st.auth = &auth.Authenticator{
		Users:  db,
		Argon2: params,
		// The failure delay is the throttle's business, tested in auth.
		Throttle: auth.NewThrottle(auth.ThrottleConfig{BaseDelay: -1}),
	}
	st.local = &local.Delivery{Maildirs: md, Directory: db}
	st.router, err = router.New(router.Options{
		Directory: db,
		Local:     st.local,
		Queue:     st.queue,
	})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := auth.SelfSigned(dir, "mx.test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	st.tls = &tls.Config{Certificates: []tls.Certificate{cert}}
	return st
}

// options returns server options for role over this stack.
func (st *testStack) options(role Role) Options {
	o := Options{
		Role:     role,
		Hostname: "mx.test",
		Target:   st.router,
		SpoolDir: st.dir,
	}
	switch role {
	case Submission:
		o.TLSConfig = st.tls
		o.Authenticator = st.auth
		o.Directory = st.db
	case MX:
		o.TLSConfig = st.tls
	}
	return o
}

// serve starts a server with opts on 127.0.0.1:0 and returns its
// address; the server is closed when the test ends.
func (st *testStack) serve(opts Options) (string, *Server) {
	st.t.Helper()
	network, addr := "tcp", "127.0.0.1:0"
	if opts.Network == "unix" {
		network, addr = "unix", opts.Addr
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		st.t.Fatal(err)
	}
	return st.serveOn(opts, l)
}

// serveOn starts a server with opts on l, like serve.
func (st *testStack) serveOn(opts Options, l net.Listener) (string, *Server) {
	st.t.Helper()
	srv, err := NewServer(opts)
	if err != nil {
		l.Close()
		st.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	st.t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != ErrServerClosed {
			st.t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return l.Addr().String(), srv
}

// messages returns the messages in user's Maildir folder ("" for
// INBOX), read straight from new/ and cur/.
func (st *testStack) messages(user, folder string) []string {
	st.t.Helper()
	u, err := st.db.LookupUser(context.Background(), user)
	if err != nil {
		st.t.Fatal(err)
	}
	base := filepath.Join(st.dir, "mail", u.Maildir)
	if folder != "" {
		base = filepath.Join(base, "."+folder)
	}
	return smtptest.Messages(st.t, base)
}

// client is the test side of a dialog: raw lines over TCP (or a unix
// socket), optionally upgraded to TLS.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, network, addr string) *client {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// reply reads one reply, multi-line or not, and returns its lines.
func (c *client) reply() ([]string, error) {
	var lines []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return lines, err
		}
		l = strings.TrimRight(l, "\r\n")
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return lines, nil
		}
	}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

func (c *client) startTLS() {
	c.t.Helper()
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.test"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

// run plays a dialog script, one directive per line:
//
//	C: text      send text and CRLF
//	R: "quoted"  send the Go-quoted bytes as they are
//	S: prefix    read a reply; its last line must start with prefix
//	H: text      one line of the last reply must contain text
//	N: text      no line of the last reply may contain text
//	TLS          start TLS (after the 220 to STARTTLS)
//	CLOSED       the server must have closed the connection
//
// Blank lines and lines starting with # are skipped.
func (c *client) run(script string) {
	c.t.Helper()
	var last []string
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		op, arg, _ := strings.Cut(line, ": ")
		switch op {
		case "C":
			c.send(arg + "\r\n")
		case "R":
			raw, err := strconv.Unquote(arg)
			if err != nil {
				c.t.Fatalf("bad R: line %q: %v", line, err)
			}
			c.send(raw)
		case "S":
			lines, err := c.reply()
			if err != nil {
				c.t.Fatalf("%s: reading reply: %v (got %q)", line, err, lines)
			}
			c.check(op, arg, lines)
			last = lines
		case "H", "N":
			c.check(op, arg, last)
		case "TLS":
			c.startTLS()
		case "CLOSED":
			l, err := c.r.ReadString('\n')
			if err == nil {
				c.t.Fatalf("expected the connection closed, got %q", l)
			}
		default:
			c.t.Fatalf("bad script line %q", line)
		}
	}
}

func (c *client) check(op, arg string, lines []string) {
	c.t.Helper()
	switch op {
	case "S":
		if !strings.HasPrefix(lines[len(lines)-1], arg) {
			c.t.Fatalf("want reply %q, got %q", arg, lines)
		}
	case "H", "N":
		found := false
		for _, l := range lines {
			if strings.Contains(l, arg) {
				found = true
			}
		}
		if found != (op == "H") {
			c.t.Fatalf("%s: %q in reply %q", op, arg, lines)
		}
	}
}

func dialErr(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	return c, err
}

// toAlice is the script of a transaction from sender@far.example to
// alice@local.example, up to the 354 reply to DATA.
const toAlice = `
C: MAIL FROM:<sender@far.example>
S: 250
C: RCPT TO:<alice@local.example>
S: 250
C: DATA
S: 354
`

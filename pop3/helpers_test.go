package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// testArgon2 keeps password checks cheap in tests; the Authenticator uses
// the same parameters so that no hash is rewritten.
var testArgon2 = auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}

// testEnv is a POP3 server on loopback with a SQLite directory, real
// Maildirs under a temp dir and a self-signed certificate.
type testEnv struct {
	t       testing.TB
	base    string // Maildir base
	dbPath  string
	dir     *store.SQL
	ms      *maildir.Store
	auth    *auth.Authenticator
	srv     *Server
	addr    string // plain listener (STLS)
	tlsAddr string // implicit TLS listener
	client  *tls.Config
	served  chan error
}

type envOption func(*Options, *auth.Authenticator)

func newEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	e := newServerEnv(t, opts...)
	l1 := listen(t)
	l2 := listen(t)
	e.addr, e.tlsAddr = l1.Addr().String(), l2.Addr().String()
	e.served = make(chan error, 2)
	go func() { e.served <- e.srv.Serve(l1) }()
	go func() { e.served <- e.srv.ServeTLS(l2) }()
	t.Cleanup(func() {
		e.srv.Close()
		for range 2 {
			if err := <-e.served; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
	})
	return e
}

// newServerEnv is newEnv without the listeners: the directory, the
// Maildirs and the Server, not yet serving.
func newServerEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	root := t.TempDir()
	e := &testEnv{t: t, base: filepath.Join(root, "mail"), dbPath: filepath.Join(root, "dir.db")}
	ctx := context.Background()
	var err error
	e.dir, err = store.Open(ctx, store.DriverSQLite, e.dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.dir.Close() })
	if err := e.dir.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	e.ms, err = maildir.New(e.base, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.ms.Close() })
	e.auth = &auth.Authenticator{
		Users:  e.dir,
		Argon2: testArgon2,
		// The failure delay is the throttle's business, tested in auth.
		Throttle: auth.NewThrottle(auth.ThrottleConfig{BaseDelay: -1}),
	}
	certFile, keyFile, err := auth.SelfSigned(filepath.Join(root, "tls"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := os.ReadFile(certFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	e.client = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	o := Options{
		Hostname:      "pop.example.org",
		Maildirs:      e.ms,
		Authenticator: e.auth,
		TLSConfig: auth.TLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &cert, nil
		}),
		AllowInsecureAuth: true,
	}
	for _, f := range opts {
		f(&o, e.auth)
	}
	e.srv, err = NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// addUser adds address with password and returns it as stored.
func (e *testEnv) addUser(address, password string) *store.User {
	e.t.Helper()
	ctx := context.Background()
	h, err := testArgon2.Hash(password)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.dir.AddUser(ctx, &store.User{Address: address, PasswordHash: h}); err != nil {
		e.t.Fatal(err)
	}
	u, err := e.dir.LookupUser(ctx, address)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// deliver stores msg (LF line endings as an MDA writes them) in u's INBOX.
func (e *testEnv) deliver(u *store.User, msg string) *maildir.Delivered {
	e.t.Helper()
	d, err := e.ms.Deliver(context.Background(), u.Maildir, "INBOX", strings.NewReader(msg), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// deliverSeq delivers msgs so that their UIDs follow the order given:
// each gets its UID before the next is delivered. (maildir numbers the
// messages it finds in one scan in file-name order, which is not the
// delivery order within one second.)
func (e *testEnv) deliverSeq(u *store.User, msgs ...string) {
	e.t.Helper()
	for _, m := range msgs {
		e.deliver(u, m)
		e.snapshot(u)
	}
}

// files lists u's message files as "new/<name>" or "cur/<name>".
func (e *testEnv) files(u *store.User) []string {
	e.t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(e.base, u.Maildir, sub))
		if err != nil && !os.IsNotExist(err) {
			e.t.Fatal(err)
		}
		for _, de := range ents {
			out = append(out, sub+"/"+de.Name())
		}
	}
	return out
}

// waitUnlocked polls until no session holds u's maildrop: the server
// notices a dropped connection on its own time and there is no event to
// wait for from outside.
func (e *testEnv) waitUnlocked(u *store.User) {
	e.t.Helper()
	md, err := e.ms.Open(context.Background(), u.Maildir)
	if err != nil {
		e.t.Fatal(err)
	}
	defer md.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unlock, err := md.Lock(ctx)
	if err != nil {
		e.t.Fatalf("maildrop still locked: %v", err)
	}
	unlock()
}

// testClient speaks raw POP3 lines.
type testClient struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func (e *testEnv) dial() *testClient {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &testClient{t: e.t, nc: nc, r: bufio.NewReader(nc)}
	e.t.Cleanup(func() { nc.Close() })
	c.expect("+OK pop.example.org POP3 ready.")
	return c
}

func (e *testEnv) dialTLS() *testClient {
	e.t.Helper()
	nc, err := tls.Dial("tcp", e.tlsAddr, e.client)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &testClient{t: e.t, nc: nc, r: bufio.NewReader(nc)}
	e.t.Cleanup(func() { nc.Close() })
	c.expect("+OK pop.example.org POP3 ready.")
	return c
}

// login dials and logs in with USER/PASS.
func (e *testEnv) login(user, pass string) *testClient {
	e.t.Helper()
	c := e.dial()
	c.cmd("USER "+user, "+OK")
	c.cmdPrefix("PASS "+pass, "+OK Logged in")
	return c
}

func (c *testClient) send(line string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatalf("sending %q: %v", line, err)
	}
}

// line reads one line and returns it without CRLF; a line that does not
// end in CRLF fails the test.
func (c *testClient) line() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a reply: %v (got %q)", err, s)
	}
	if !strings.HasSuffix(s, "\r\n") {
		c.t.Fatalf("reply %q does not end in CRLF", s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

func (c *testClient) expect(want string) {
	c.t.Helper()
	if got := c.line(); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

func (c *testClient) expectPrefix(prefix string) string {
	c.t.Helper()
	got := c.line()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("got %q, want it to begin with %q", got, prefix)
	}
	return got
}

// cmd sends line and expects the reply want exactly.
func (c *testClient) cmd(line, want string) {
	c.t.Helper()
	c.send(line)
	c.expect(want)
}

// cmdPrefix sends line and expects a reply beginning with prefix.
func (c *testClient) cmdPrefix(line, prefix string) string {
	c.t.Helper()
	c.send(line)
	return c.expectPrefix(prefix)
}

// multi reads a multi-line response body up to the "." line, returning
// the lines as sent (still dot-stuffed).
func (c *testClient) multi() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}

// eof expects the server to close the connection.
func (c *testClient) eof() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := c.r.ReadString('\n')
	if err == nil || s != "" {
		c.t.Fatalf("got %q, %v; want the connection closed", s, err)
	}
	if isTimeout(err) {
		c.t.Fatal("the server did not close the connection")
	}
}

func netDial(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }

func newReader(nc net.Conn) *bufio.Reader { return bufio.NewReader(nc) }

// tlsClient runs the client side of STLS on c, which has just read the
// +OK, and returns a client speaking over TLS.
func tlsClient(t *testing.T, c *testClient, e *testEnv) *testClient {
	t.Helper()
	tc := tls.Client(c.nc, e.client)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return &testClient{t: t, nc: tc, r: bufio.NewReader(tc)}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func newStore(base string) (*maildir.Store, error) { return maildir.New(base, nil) }

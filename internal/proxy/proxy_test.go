package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/auth"
	imapserver "github.com/mailagent/mailagent/imap"
	"github.com/mailagent/mailagent/internal/proxy"
	"github.com/mailagent/mailagent/mailtest"
	"github.com/mailagent/mailagent/pop3"
	"github.com/mailagent/mailagent/smtp"
	"github.com/mailagent/mailagent/store"
)

const password = "correct horse battery"

// proxyIP is the proxy's source address, the one address the backends
// trust; clients connect from 127.0.0.1.
var proxyIP = net.IPv4(127, 0, 0, 77)

// homes is the directory's Home for the tests: user → host.
type homes struct {
	mu sync.Mutex
	m  map[string]string
}

func (h *homes) Home(_ context.Context, addr string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[addr], nil
}

func (h *homes) set(addr, host string) {
	h.mu.Lock()
	h.m[addr] = host
	h.mu.Unlock()
}

// logBuf collects a backend's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// backend is one mail node: a mailtest stack, plus IMAP, POP3,
// submission and LMTP listeners behind proxy.TrustedListener on the
// shared ports.
type backend struct {
	*mailtest.Server
	log   *logBuf
	close map[string]func()
}

type fixture struct {
	t        testing.TB
	backends []*backend
	homes    *homes
	proxy    *proxy.Proxy
	addr     map[string]string // proto → proxy address
	ports    map[string]int    // proto → every backend's port
	auth     *auth.Authenticator
	clientTL *tls.Config
}

// sharedPorts listens on the same port for each protocol on both
// addresses, as the proxy expects of its backends. Other tests use the
// same loopback addresses, so a port free on the first address may be
// taken on the second: then every listener is closed and the choice
// starts again.
func sharedPorts(t testing.TB, a, b net.IP, protos ...string) (map[string]int, [2]map[string]net.Listener) {
	t.Helper()
	for try := 0; try < 100; try++ {
		ports := map[string]int{}
		lns := [2]map[string]net.Listener{{}, {}}
		var err error
		for _, proto := range protos {
			var la, lb net.Listener
			if la, err = net.Listen("tcp", net.JoinHostPort(a.String(), "0")); err != nil {
				t.Fatal(err)
			}
			lns[0][proto] = la
			ports[proto] = la.Addr().(*net.TCPAddr).Port
			if lb, err = net.Listen("tcp", net.JoinHostPort(b.String(), fmt.Sprint(ports[proto]))); err != nil {
				break
			}
			lns[1][proto] = lb
		}
		if err == nil {
			return ports, lns
		}
		for _, m := range lns {
			for _, ln := range m {
				ln.Close()
			}
		}
	}
	t.Fatal("no port free on both backend addresses in 100 tries")
	return nil, [2]map[string]net.Listener{}
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureWith(t, nil)
}

// newFixtureWith is newFixture with the proxy's options changed by mod.
func newFixtureWith(t testing.TB, mod func(*proxy.Options)) *fixture {
	t.Helper()
	net0 := mailtest.NewNetwork()
	f := &fixture{t: t, homes: &homes{m: map[string]string{}}, addr: map[string]string{}}
	var servers []*mailtest.Server
	var logs []*logBuf
	for _, d := range []string{"a.test", "b.test"} {
		lb := &logBuf{}
		servers = append(servers, mailtest.NewServer(t, mailtest.WithDomain(d), mailtest.WithNetwork(net0),
			mailtest.WithLogger(slog.New(slog.NewTextHandler(lb, nil)))))
		logs = append(logs, lb)
	}
	ports, lns := sharedPorts(t, servers[0].IP, servers[1].IP, "imap", "pop3", "submission", "lmtp", "imaps", "pop3s")
	for i, s := range servers {
		lb, d := logs[i], s.Domain
		b := &backend{Server: s, log: lb, close: map[string]func(){}}
		f.backends = append(f.backends, b)
		logger := slog.New(slog.NewTextHandler(lb, nil))
		is, err := imapserver.NewServer(imapserver.Options{Store: s.Maildirs, Authenticator: s.Auth, TLSConfig: s.TLS, Logger: logger,
			MaxConnsPerUser: 100, MaxConnsPerIP: 200})
		if err != nil {
			t.Fatal(err)
		}
		ps, err := pop3.NewServer(pop3.Options{Hostname: s.Hostname, Maildirs: s.Maildirs, Authenticator: s.Auth, TLSConfig: s.TLS, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		iss, err := imapserver.NewServer(imapserver.Options{Store: s.Maildirs, Authenticator: s.Auth, TLSConfig: s.TLS, Logger: logger,
			ImplicitTLS: true, MaxConnsPerUser: 100, MaxConnsPerIP: 200})
		if err != nil {
			t.Fatal(err)
		}
		pss, err := pop3.NewServer(pop3.Options{Hostname: s.Hostname, Maildirs: s.Maildirs, Authenticator: s.Auth, TLSConfig: s.TLS,
			ImplicitTLS: true, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := smtp.NewServer(smtp.Options{Role: smtp.Submission, Hostname: s.Hostname, Target: s.Router, TLSConfig: s.TLS,
			Authenticator: s.Auth, Directory: s.Store, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		lmtp, err := smtp.NewServer(smtp.Options{Role: smtp.LMTP, Hostname: s.Hostname, Target: s.Router, Logger: logger,
			LMTPNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		if err != nil {
			t.Fatal(err)
		}
		for _, srv := range []struct {
			proto string
			serve func(net.Listener) error
			stop  func(context.Context) error
		}{{"imap", is.Serve, is.Shutdown}, {"pop3", ps.Serve, ps.Shutdown}, {"submission", sub.Serve, sub.Shutdown}, {"lmtp", lmtp.Serve, lmtp.Shutdown},
			{"imaps", iss.Serve, iss.Shutdown}, {"pop3s", pss.Serve, pss.Shutdown}} {
			ln := proxy.TrustedListener(lns[i][srv.proto], []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte(proxyIP.To4())), 32)}, time.Second)
			go srv.serve(ln)
			stop := sync.OnceFunc(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.stop(ctx)
			})
			b.close[srv.proto] = stop
			t.Cleanup(stop)
		}
		user := "user@" + d
		hash, err := auth.HashPassword(password)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Store.AddUser(context.Background(), &store.User{Address: user, PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
		f.homes.set(user, s.IP.String())
	}
	// The proxy checks logins against the first backend's directory,
	// which holds both users under the same password.
	hash, _ := auth.HashPassword(password)
	dir := f.backends[0].Store
	must(t, dir.AddDomain(context.Background(), "b.test"))
	must(t, dir.AddUser(context.Background(), &store.User{Address: "user@b.test", PasswordHash: hash}))
	// And each backend knows the other's user, so a move can land.
	must(t, f.backends[1].Store.AddDomain(context.Background(), "a.test"))
	must(t, f.backends[1].Store.AddUser(context.Background(), &store.User{Address: "user@a.test", PasswordHash: hash}))

	front := f.backends[0].TLS
	// The backends' hash parameters: a login through the proxy does not
	// rehash what a backend's login rehashed.
	f.auth = &auth.Authenticator{Users: dir, Argon2: f.backends[0].Auth.Argon2}
	opts := proxy.Options{
		Directory:        f.homes,
		Backends:         []string{f.backends[0].IP.String(), f.backends[1].IP.String()},
		Auth:             f.auth,
		Ports:            proxy.Ports{IMAP: ports["imap"], POP3: ports["pop3"], Submission: ports["submission"], LMTP: ports["lmtp"]},
		BackendTLS:       proxy.StartTLS,
		BackendTLSConfig: &tls.Config{InsecureSkipVerify: true},
		TLSConfig:        front,
		SourceAddr:       proxyIP,
		Hostname:         "proxy.test",
		// A backend the tests take down refuses the connection at
		// once; the bound only has to outlast a loaded machine's
		// Argon2 login at the backend under -race.
		DialTimeout: 30 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	p, err := proxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.proxy = p
	f.ports = ports
	f.clientTL = f.backends[0].ClientTLS
	for proto, serve := range map[string]func(net.Listener) error{
		"imap":       func(ln net.Listener) error { return p.ServeIMAP(ln, false) },
		"pop3":       func(ln net.Listener) error { return p.ServePOP3(ln, false) },
		"submission": func(ln net.Listener) error { return p.ServeSubmission(ln, false) },
		"lmtp":       p.ServeLMTP,
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f.addr[proto] = ln.Addr().String()
		go serve(ln)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
		p.Close()
	})
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// deliver writes a message with subject into user's INBOX on b.
func (b *backend) deliver(t testing.TB, user, subject string) {
	t.Helper()
	u, err := b.Store.LookupUser(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: a@example.net\r\nTo: " + user + "\r\nSubject: " + subject + "\r\n\r\nbody\r\n"
	if _, err := b.Maildirs.Deliver(context.Background(), u.Maildir, "INBOX", strings.NewReader(msg), nil); err != nil {
		t.Fatal(err)
	}
}

// count returns the number of messages in user's INBOX on b.
func (b *backend) count(t testing.TB, user string) int {
	t.Helper()
	u, err := b.Store.LookupUser(context.Background(), user)
	if err != nil {
		return 0
	}
	md, err := b.Maildirs.Open(context.Background(), u.Maildir)
	must(t, err)
	defer md.Close()
	n := 0
	for _, sub := range []string{"new", "cur"} {
		es, _ := os.ReadDir(filepath.Join(md.Path(), sub))
		n += len(es)
	}
	return n
}

func saslPlain(user, pass string) sasl.Client { return sasl.NewPlainClient("", user, pass) }

func (f *fixture) imapLogin(user string) (*imapclient.Client, error) {
	c, err := imapclient.DialStartTLS(f.addr["imap"], &imapclient.Options{TLSConfig: f.clientTL})
	if err != nil {
		return nil, err
	}
	f.t.Cleanup(func() { c.Close() })
	return c, c.Login(user, password).Wait()
}

// subjects returns the subjects in c's INBOX.
func subjects(t *testing.T, c *imapclient.Client) []string {
	t.Helper()
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, sel.NumMessages), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.Envelope.Subject)
	}
	return out
}

func TestIMAPReachesTheUsersBackend(t *testing.T) {
	f := newFixture(t)
	a, b := f.backends[0], f.backends[1]
	a.deliver(t, "user@a.test", "on a")
	b.deliver(t, "user@b.test", "on b")
	b.deliver(t, "user@a.test", "stray copy on b")

	ca, err := f.imapLogin("user@a.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := subjects(t, ca); len(got) != 1 || got[0] != "on a" {
		t.Fatalf("user@a.test sees %q, want its message on a", got)
	}
	cb, err := f.imapLogin("user@b.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := subjects(t, cb); len(got) != 1 || got[0] != "on b" {
		t.Fatalf("user@b.test sees %q", got)
	}
	// The backend logged the client, not the proxy, and got its ID.
	if l := a.log.String(); !strings.Contains(l, "remote=127.0.0.1:") || strings.Contains(l, "remote=127.0.0.77") ||
		!strings.Contains(l, "id_x-originating-ip=127.0.0.1") {
		t.Fatalf("backend log does not name the client:\n%s", l)
	}
	if _, err := f.imapLogin("user@a.test"); err != nil {
		t.Fatal(err)
	}
	c, err := imapclient.DialStartTLS(f.addr["imap"], &imapclient.Options{TLSConfig: f.clientTL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("user@a.test", "wrong").Wait(); err == nil || !strings.Contains(err.Error(), "AUTHENTICATIONFAILED") {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestBackendDownFailsItsUsersOnly(t *testing.T) {
	f := newFixture(t)
	f.backends[1].close["imap"]()
	f.backends[1].close["pop3"]()
	f.backends[1].close["lmtp"]()
	_, err := f.imapLogin("user@b.test")
	if err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
		t.Fatalf("login of a user of the down backend: %v, want NO [UNAVAILABLE]", err)
	}
	if _, err := f.imapLogin("user@a.test"); err != nil {
		t.Fatalf("user of the other backend: %v", err)
	}
	r := pop3Dial(t, f.addr["pop3"], f.clientTL)
	if got := r.cmd("USER user@b.test"); !strings.HasPrefix(got, "+OK") {
		t.Fatal(got)
	}
	if got := r.cmd("PASS " + password); got != "-ERR [SYS/TEMP] Mail server unavailable, try again later" {
		t.Fatalf("POP3 login of a user of the down backend: %q", got)
	}
	c := lmtpClient(t, f.addr["lmtp"])
	must(t, c.Mail("s@example.net", nil))
	must(t, c.Rcpt("user@a.test", nil))
	if err := c.Rcpt("user@b.test", nil); !isTemp441(err) {
		t.Fatalf("LMTP RCPT of a user of the down backend: %v, want 451 4.4.1", err)
	}
}

func isTemp441(err error) bool {
	var se *gosmtp.SMTPError
	return errors.As(err, &se) && se.Code == 451 && se.EnhancedCode == gosmtp.EnhancedCode{4, 4, 1}
}

func lmtpClient(t *testing.T, addr string) *gosmtp.Client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := gosmtp.NewClientLMTP(nc)
	t.Cleanup(func() { c.Close() })
	must(t, c.Hello("client.test"))
	return c
}

func TestLMTPSendsEachRecipientToItsBackend(t *testing.T) {
	f := newFixture(t)
	c := lmtpClient(t, f.addr["lmtp"])
	must(t, c.Mail("s@example.net", nil))
	must(t, c.Rcpt("user@a.test", nil))
	must(t, c.Rcpt("user@b.test", nil))
	if err := c.Rcpt("nobody@a.test", nil); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("unknown recipient: %v", err)
	}
	w, err := c.Data()
	must(t, err)
	fmt.Fprint(w, "From: s@example.net\r\nSubject: both\r\n\r\nhello\r\n")
	resp, err := w.CloseWithLMTPResponse()
	if err != nil || len(resp) != 2 {
		t.Fatalf("DATA: %v, %v", resp, err)
	}
	for i, user := range []string{"user@a.test", "user@b.test"} {
		if n := f.backends[i].count(t, user); n != 1 {
			t.Fatalf("%s on its backend: %d messages", user, n)
		}
	}
	if n := f.backends[1].count(t, "user@a.test"); n != 0 {
		t.Fatalf("user@a.test on the other backend: %d messages", n)
	}
}

func TestMoveKicksAndTheNextLoginGoesToTheNewHome(t *testing.T) {
	f := newFixture(t)
	a, b := f.backends[0], f.backends[1]
	a.deliver(t, "user@a.test", "before the move")
	b.deliver(t, "user@a.test", "after the move")
	c, err := f.imapLogin("user@a.test")
	must(t, err)
	if got := subjects(t, c); len(got) != 1 || got[0] != "before the move" {
		t.Fatalf("before: %q", got)
	}
	f.homes.set("user@a.test", b.IP.String())
	if n := f.proxy.Kick("User@A.test"); n != 1 {
		t.Fatalf("Kick ended %d sessions, want 1", n)
	}
	if err := c.Noop().Wait(); err == nil {
		t.Fatal("the kicked session still answers")
	}
	c2, err := f.imapLogin("user@a.test")
	must(t, err)
	if got := subjects(t, c2); len(got) != 1 || got[0] != "after the move" {
		t.Fatalf("after: %q", got)
	}
}

func TestPOP3AndSubmission(t *testing.T) {
	f := newFixture(t)
	f.backends[1].deliver(t, "user@b.test", "x")
	r := pop3Dial(t, f.addr["pop3"], f.clientTL)
	r.cmd("USER user@b.test")
	if got := r.cmd("PASS " + password); !strings.HasPrefix(got, "+OK") {
		t.Fatal(got)
	}
	if got := r.cmd("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Fatalf("STAT through the proxy = %q", got)
	}

	c, err := gosmtp.DialStartTLS(f.addr["submission"], f.clientTL)
	must(t, err)
	defer c.Close()
	if err := c.Mail("user@b.test", nil); err == nil {
		t.Fatal("MAIL before AUTH accepted")
	}
	must(t, c.Auth(saslPlain("user@b.test", password)))
	must(t, c.Mail("user@b.test", nil))
	must(t, c.Rcpt("user@a.test", nil))
	w, err := c.Data()
	must(t, err)
	fmt.Fprint(w, "From: user@b.test\r\nTo: user@a.test\r\nSubject: submitted\r\n\r\nhi\r\n")
	must(t, w.Close())
	// b's submission delivered it into b's Maildir for user@a.test,
	// which b knows as local: the backend, not the proxy, did it.
	if n := f.backends[1].count(t, "user@a.test"); n != 1 {
		t.Fatalf("submitted message on the sender's backend: %d", n)
	}
}

type pop3Conn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func pop3Dial(t *testing.T, addr string, cfg *tls.Config) *pop3Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { nc.Close() })
	c := &pop3Conn{t: t, nc: nc, br: bufio.NewReader(nc)}
	c.line()
	if got := c.cmd("STLS"); !strings.HasPrefix(got, "+OK") {
		t.Fatal(got)
	}
	tc := tls.Client(nc, cfg)
	must(t, tc.Handshake())
	c.nc, c.br = tc, bufio.NewReader(tc)
	return c
}

func (c *pop3Conn) line() string {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.TrimRight(l, "\r\n")
}

func (c *pop3Conn) cmd(s string) string {
	fmt.Fprintf(c.nc, "%s\r\n", s)
	return c.line()
}

func TestLMTPClientNotAllowed(t *testing.T) {
	p, err := proxy.New(proxy.Options{Directory: &homes{m: map[string]string{}}, Auth: &auth.Authenticator{},
		LMTPNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go p.ServeLMTP(ln)
	t.Cleanup(func() { p.Close() })
	nc, err := net.Dial("tcp", ln.Addr().String())
	must(t, err)
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if got, _ := bufio.NewReader(nc).ReadString('\n'); got != "554 5.7.1 Client host not allowed\r\n" {
		t.Fatalf("LMTP client outside lmtp_networks got %q", got)
	}
}

func TestImplicitTLSToBackends(t *testing.T) {
	f := newFixture(t)
	f.backends[1].deliver(t, "user@b.test", "over imaps")
	p, err := proxy.New(proxy.Options{
		Directory:        f.homes,
		Auth:             f.auth,
		Ports:            proxy.Ports{IMAP: f.ports["imaps"], POP3: f.ports["pop3s"]},
		BackendTLS:       proxy.ImplicitTLS,
		BackendTLSConfig: &tls.Config{InsecureSkipVerify: true},
		TLSConfig:        f.backends[0].TLS,
		SourceAddr:       proxyIP,
	})
	must(t, err)
	t.Cleanup(func() { p.Close() })
	iln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go p.ServeIMAP(iln, true)
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go p.ServePOP3(pln, false)

	c, err := imapclient.DialTLS(iln.Addr().String(), &imapclient.Options{TLSConfig: f.clientTL})
	must(t, err)
	defer c.Close()
	must(t, c.Login("user@b.test", password).Wait())
	if got := subjects(t, c); len(got) != 1 || got[0] != "over imaps" {
		t.Fatalf("through imaps on both sides: %q", got)
	}
	r := pop3Dial(t, pln.Addr().String(), f.clientTL)
	r.cmd("USER user@b.test")
	if got := r.cmd("PASS " + password); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("POP3 to a pop3s backend: %q", got)
	}
	if got := r.cmd("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Fatalf("STAT: %q", got)
	}
}

func TestMoveEndsPOP3SessionWithERR(t *testing.T) {
	f := newFixture(t)
	r := pop3Dial(t, f.addr["pop3"], f.clientTL)
	r.cmd("USER user@a.test")
	if got := r.cmd("PASS " + password); !strings.HasPrefix(got, "+OK") {
		t.Fatal(got)
	}
	if n := f.proxy.Kick("user@a.test"); n != 1 {
		t.Fatalf("Kick ended %d sessions", n)
	}
	if got := r.line(); got != "-ERR [SYS/TEMP] Your mailbox moved; log in again" {
		t.Fatalf("kicked POP3 session got %q", got)
	}
	if _, err := r.br.ReadString('\n'); err == nil {
		t.Fatal("the kicked POP3 session stays open")
	}
}

// emfileOnce fails its first Accept as a process out of descriptors does.
type emfileOnce struct {
	net.Listener
	failed bool
}

func (l *emfileOnce) Accept() (net.Conn, error) {
	if !l.failed {
		l.failed = true
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// A passing Accept failure (out of descriptors) pauses the proxy's
// listener, as it does the mail servers', instead of ending it.
func TestAcceptFailurePasses(t *testing.T) {
	f := newFixture(t)
	f.backends[1].deliver(t, "user@b.test", "after EMFILE")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	served := make(chan error, 1)
	go func() { served <- f.proxy.ServeIMAP(&emfileOnce{Listener: ln}, false) }()
	c, err := imapclient.DialStartTLS(ln.Addr().String(), &imapclient.Options{TLSConfig: f.clientTL})
	must(t, err)
	defer c.Close()
	must(t, c.Login("user@b.test", password).Wait())
	if got := subjects(t, c); len(got) != 1 || got[0] != "after EMFILE" {
		t.Fatalf("after a failed Accept: %q", got)
	}
	select {
	case err := <-served:
		t.Fatalf("ServeIMAP ended: %v", err)
	default:
	}
}

// TestIMAPLiteralsOfRefusedCommands: before TLS, LOGIN with a
// synchronizing literal is refused without a continuation request, so
// the client never sends its password in clear; a command not served
// before login likewise; the connection goes on.
func TestIMAPLiteralsOfRefusedCommands(t *testing.T) {
	f := newFixture(t)
	nc, err := net.Dial("tcp", f.addr["imap"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	if g, _ := br.ReadString('\n'); !strings.Contains(g, "LOGINDISABLED") {
		t.Fatalf("greeting %q", g)
	}
	for _, c := range []struct{ cmd, want string }{
		{"a1 LOGIN {11}", "a1 NO [PRIVACYREQUIRED]"},
		{"a2 LOGIN user@a.test {8}", "a2 NO [PRIVACYREQUIRED]"},
		{"a3 SELECT {5}", "a3 BAD"},
		{"a4 NOOP", "a4 OK"},
	} {
		if _, err := fmt.Fprintf(nc, "%s\r\n", c.cmd); err != nil {
			t.Fatal(err)
		}
		if l, err := br.ReadString('\n'); !strings.HasPrefix(l, c.want) {
			t.Fatalf("%s: got %q %v, want %q and no continuation request", c.cmd, l, err, c.want)
		}
	}
}

// smtpDialog is a raw submission client of the proxy, after STARTTLS.
type smtpDialog struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func smtpStartTLS(t *testing.T, addr string, cfg *tls.Config) *smtpDialog {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(2 * time.Minute)) // fail rather than hang
	d := &smtpDialog{t: t, nc: nc, br: bufio.NewReader(nc)}
	d.reply()
	d.cmd("EHLO laptop")
	if r := d.cmd("STARTTLS"); !strings.HasPrefix(r, "220") {
		t.Fatalf("STARTTLS: %s", r)
	}
	tc := tls.Client(nc, cfg)
	must(t, tc.Handshake())
	d.nc, d.br = tc, bufio.NewReader(tc)
	d.cmd("EHLO laptop")
	return d
}

// reply reads one reply, its last line; "EOF" when the connection ended.
func (d *smtpDialog) reply() string {
	d.t.Helper()
	for {
		l, err := d.br.ReadString('\n')
		if err != nil {
			if l == "" {
				return "EOF"
			}
			d.t.Fatalf("reading a reply: %v", err)
		}
		if len(l) < 4 || l[3] != '-' {
			return strings.TrimRight(l, "\r\n")
		}
	}
}

func (d *smtpDialog) cmd(s string) string {
	d.t.Helper()
	if _, err := io.WriteString(d.nc, s+"\r\n"); err != nil {
		return "EOF"
	}
	return d.reply()
}

// Submission through the proxy counts failed logins as the backends do:
// a wrong password or a response PLAIN cannot parse is 535, and the one
// that reaches MaxAuthFailures is 421 and the connection's end.
func TestSubmissionAuthFailuresCounted(t *testing.T) {
	f := newFixture(t)
	d := smtpStartTLS(t, f.addr["submission"], f.clientTL)
	bad := base64.StdEncoding.EncodeToString([]byte("\x00user@b.test\x00wrong"))
	if r := d.cmd("AUTH PLAIN " + bad); !strings.HasPrefix(r, "535 5.7.8") {
		t.Fatalf("wrong password: %s", r)
	}
	if r := d.cmd("AUTH PLAIN"); !strings.HasPrefix(r, "334") {
		t.Fatalf("AUTH PLAIN: %s", r)
	}
	if r := d.cmd("="); !strings.HasPrefix(r, "535 5.7.8") {
		t.Fatalf("empty PLAIN response: %s", r)
	}
	if r := d.cmd("AUTH PLAIN " + bad); !strings.HasPrefix(r, "421 4.7.0") {
		t.Fatalf("third failure: %s", r)
	}
	if r := d.reply(); r != "EOF" {
		t.Fatalf("connection open after 421: %s", r)
	}
}

// A submission client that does not log in within LoginTimeout is cut
// off, however many commands it sends meanwhile.
func TestSubmissionLoginTimeout(t *testing.T) {
	f := newFixtureWith(t, func(o *proxy.Options) { o.LoginTimeout = 2 * time.Second })
	d := smtpStartTLS(t, f.addr["submission"], f.clientTL)
	start := time.Now()
	for {
		r := d.cmd("NOOP")
		if r == "EOF" || strings.HasPrefix(r, "421") {
			break
		}
		if !strings.HasPrefix(r, "250") {
			t.Fatalf("NOOP: %s", r)
		}
		if time.Since(start) > time.Minute {
			t.Fatal("still connected a minute after the login timeout")
		}
	}
}

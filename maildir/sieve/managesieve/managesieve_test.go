package managesieve

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/store"
)

var testArgon2 = auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}

type testEnv struct {
	t      testing.TB
	base   string
	addr   string
	client *tls.Config
	srv    *Server
	cert   string // the server certificate's PEM file
}

func newEnv(t testing.TB, mod func(*Options)) *testEnv {
	t.Helper()
	root := t.TempDir()
	ctx := context.Background()
	dir, err := store.Open(ctx, store.DriverSQLite, filepath.Join(root, "dir.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	if err := dir.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	h, _ := testArgon2.Hash("secret")
	if err := dir.AddUser(ctx, &store.User{Address: "bob@example.org", PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	a := &auth.Authenticator{Users: dir, Argon2: testArgon2,
		Throttle: auth.NewThrottle(auth.ThrottleConfig{BaseDelay: -1})}
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
	e := &testEnv{t: t, base: filepath.Join(root, "mail"), cert: certFile, client: &tls.Config{RootCAs: pool, ServerName: "localhost"}}
	o := Options{
		Authenticator: a,
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		MaildirBase:   e.base,
		TLSConfig:     auth.TLSIntermediate.Config(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }),
	}
	if mod != nil {
		mod(&o)
	}
	e.srv, err = NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(l) }()
	t.Cleanup(func() {
		e.srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return e
}

// home is bob's home: the parent of his Maildir, as Dovecot has it.
func (e *testEnv) home() string { return filepath.Join(e.base, "example.org", "bob") }

type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func (e *testEnv) dial() *client {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	c := &client{t: e.t, nc: nc, br: bufio.NewReader(nc)}
	return c
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// reply reads lines up to and including the one starting with OK, NO or
// BYE.
func (c *client) reply() []string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading reply after %q: %v", lines, err)
		}
		l = strings.TrimRight(l, "\r\n")
		lines = append(lines, l)
		if strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") || strings.HasPrefix(l, "BYE") {
			return lines
		}
	}
}

func (c *client) cmd(s string) []string {
	c.t.Helper()
	c.send(s + "\r\n")
	return c.reply()
}

func last(lines []string) string { return lines[len(lines)-1] }

func (c *client) startTLS(cfg *tls.Config) []string {
	c.t.Helper()
	if r := last(c.cmd("STARTTLS")); !strings.HasPrefix(r, "OK") {
		c.t.Fatalf("STARTTLS: %s", r)
	}
	tc := tls.Client(c.nc, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.nc, c.br = tc, bufio.NewReader(tc)
	return c.reply()
}

func plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func (e *testEnv) login() *client {
	c := e.dial()
	c.reply()
	c.startTLS(e.client)
	if r := last(c.cmd(`AUTHENTICATE "PLAIN" "` + plain("bob@example.org", "secret") + `"`)); !strings.HasPrefix(r, "OK") {
		e.t.Fatalf("login: %s", r)
	}
	return c
}

func put(name, script string) string {
	return fmt.Sprintf("PUTSCRIPT %q {%d+}\r\n%s", name, len(script), script)
}

func TestSession(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	greet := strings.Join(c.reply(), "\n")
	for _, want := range []string{`"STARTTLS"`, `"SASL" ""`, `"VERSION" "1.0"`, `"SIEVE" "fileinto reject`} {
		if !strings.Contains(greet, want) {
			t.Errorf("greeting lacks %s:\n%s", want, greet)
		}
	}
	if r := last(c.cmd(`AUTHENTICATE "PLAIN" "` + plain("bob@example.org", "secret") + `"`)); !strings.HasPrefix(r, "NO (ENCRYPT-NEEDED)") {
		t.Fatalf("AUTHENTICATE before TLS: %s", r)
	}
	if r := last(c.cmd("LISTSCRIPTS")); !strings.HasPrefix(r, "NO") {
		t.Fatalf("LISTSCRIPTS before login: %s", r)
	}
	caps := strings.Join(c.startTLS(e.client), "\n")
	if strings.Contains(caps, "STARTTLS") || !strings.Contains(caps, `"SASL" "PLAIN`) {
		t.Fatalf("capabilities after TLS:\n%s", caps)
	}
	// PLAIN without an initial response: an empty challenge, then the response.
	c.send("AUTHENTICATE \"PLAIN\"\r\n")
	if l, _ := c.br.ReadString('\n'); l != "\"\"\r\n" {
		t.Fatalf("challenge %q", l)
	}
	if r := last(c.cmd(`"` + plain("bob@example.org", "secret") + `"`)); !strings.HasPrefix(r, "OK") {
		t.Fatalf("login: %s", r)
	}

	script := "require \"fileinto\";\r\nif header :contains \"subject\" \"[dev]\" {\r\n  fileinto \"Lists\";\r\n}\r\n"
	if r := last(c.cmd(put("lists", script))); r != "OK" {
		t.Fatalf("PUTSCRIPT: %s", r)
	}
	if r := last(c.cmd(put("bad", "require \"fileinto\";\r\nfileinto 42;\r\n"))); !strings.HasPrefix(r, `NO "2:10: fileinto: expected a string`) {
		t.Fatalf("PUTSCRIPT of a bad script: %s", r)
	}
	if r := last(c.cmd(`CHECKSCRIPT {5+}` + "\r\nkeep;")); r != "OK" {
		t.Fatalf("CHECKSCRIPT: %s", r)
	}
	if got, err := os.ReadFile(filepath.Join(e.home(), "sieve", "lists.sieve")); err != nil || string(got) != script {
		t.Fatalf("stored script %q, %v", got, err)
	}
	if r := c.cmd("LISTSCRIPTS"); strings.Join(r, "|") != `"lists"|OK` {
		t.Fatalf("LISTSCRIPTS: %q", r)
	}
	if r := last(c.cmd(`SETACTIVE "lists"`)); r != "OK" {
		t.Fatalf("SETACTIVE: %s", r)
	}
	if target, err := os.Readlink(filepath.Join(e.home(), ".dovecot.sieve")); err != nil || target != "sieve/lists.sieve" {
		t.Fatalf(".dovecot.sieve -> %q, %v", target, err)
	}
	if r := c.cmd("LISTSCRIPTS"); strings.Join(r, "|") != `"lists" ACTIVE|OK` {
		t.Fatalf("LISTSCRIPTS: %q", r)
	}
	c.send("GETSCRIPT \"lists\"\r\n")
	if l, _ := c.br.ReadString('\n'); l != fmt.Sprintf("{%d}\r\n", len(script)) {
		t.Fatalf("GETSCRIPT literal %q", l)
	}
	body := make([]byte, len(script)+2)
	if _, err := c.br.Read(body); err != nil || string(body[:len(script)]) != script {
		t.Fatalf("GETSCRIPT body %q", body)
	}
	if r := c.reply(); last(r) != "OK" {
		t.Fatalf("GETSCRIPT: %q", r)
	}
	if r := last(c.cmd(`DELETESCRIPT "lists"`)); !strings.HasPrefix(r, "NO (ACTIVE)") {
		t.Fatalf("DELETESCRIPT of the active script: %s", r)
	}
	if r := last(c.cmd(`RENAMESCRIPT "lists" "main"`)); r != "OK" {
		t.Fatalf("RENAMESCRIPT: %s", r)
	}
	if target, _ := os.Readlink(filepath.Join(e.home(), ".dovecot.sieve")); target != "sieve/main.sieve" {
		t.Fatalf("after rename .dovecot.sieve -> %q", target)
	}
	if r := last(c.cmd(`GETSCRIPT "lists"`)); !strings.HasPrefix(r, "NO (NONEXISTENT)") {
		t.Fatalf("GETSCRIPT of a renamed script: %s", r)
	}
	if r := last(c.cmd(put("../x", "keep;"))); !strings.HasPrefix(r, "NO") {
		t.Fatalf("PUTSCRIPT ../x: %s", r)
	}
	if r := last(c.cmd(`SETACTIVE ""`)); r != "OK" {
		t.Fatalf("SETACTIVE \"\": %s", r)
	}
	if _, err := os.Lstat(filepath.Join(e.home(), ".dovecot.sieve")); !os.IsNotExist(err) {
		t.Fatalf("link still there: %v", err)
	}
	if r := last(c.cmd(`DELETESCRIPT "main"`)); r != "OK" {
		t.Fatalf("DELETESCRIPT: %s", r)
	}
	if _, err := os.Stat(filepath.Join(e.home(), "sieve", "main.sieve")); !os.IsNotExist(err) {
		t.Fatalf("script still there: %v", err)
	}
	if r := last(c.cmd(`NOOP "t1"`)); r != `OK (TAG "t1") "Done."` {
		t.Fatalf("NOOP: %s", r)
	}
	if r := last(c.cmd("LOGOUT")); !strings.HasPrefix(r, "OK") {
		t.Fatalf("LOGOUT: %s", r)
	}
}

func TestQuota(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxScriptSize = 100; o.MaxScripts = 2; o.MaxStorage = 150 })
	c := e.login()
	if r := last(c.cmd(`HAVESPACE "a" 101`)); !strings.HasPrefix(r, "NO (QUOTA/MAXSIZE)") {
		t.Fatalf("HAVESPACE over the size: %s", r)
	}
	if r := last(c.cmd(`HAVESPACE "a" 100`)); r != "OK" {
		t.Fatalf("HAVESPACE: %s", r)
	}
	big := "keep;" + strings.Repeat("#", 74) + "\r\n"
	if r := last(c.cmd(put("a", big))); r != "OK" {
		t.Fatalf("PUTSCRIPT a: %s", r)
	}
	if r := last(c.cmd(put("b", big))); !strings.HasPrefix(r, "NO (QUOTA/MAXSTORAGE)") {
		t.Fatalf("PUTSCRIPT b over the storage: %s", r)
	}
	if r := last(c.cmd(put("a", big))); r != "OK" {
		t.Fatalf("replacing a within the storage: %s", r)
	}
	if r := last(c.cmd(put("b", "keep;"))); r != "OK" {
		t.Fatalf("PUTSCRIPT b: %s", r)
	}
	if r := last(c.cmd(put("c", "keep;"))); !strings.HasPrefix(r, "NO (QUOTA/MAXSCRIPTS)") {
		t.Fatalf("PUTSCRIPT c over the count: %s", r)
	}
	// A literal past the size is refused before its bytes are read, and
	// the connection closed so that they are never taken for commands.
	c.send("PUTSCRIPT \"d\" {1000+}\r\n")
	if r := last(c.reply()); !strings.HasPrefix(r, "BYE (QUOTA/MAXSIZE)") {
		t.Fatalf("oversized literal: %s", r)
	}
	if _, err := os.Stat(filepath.Join(e.home(), "sieve", "c.sieve")); !os.IsNotExist(err) {
		t.Fatalf("c stored over quota: %v", err)
	}
}

func TestAuthFailures(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.reply()
	c.startTLS(e.client)
	for i := range 3 {
		r := last(c.cmd(`AUTHENTICATE "PLAIN" "` + plain("bob@example.org", "wrong") + `"`))
		if i < 2 && r != `NO "Authentication failed."` || i == 2 && !strings.HasPrefix(r, "BYE") {
			t.Fatalf("failure %d: %s", i+1, r)
		}
	}
}

func TestLoginTimeout(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.LoginTimeout = 300 * time.Millisecond })
	c := e.dial()
	c.reply()
	start := time.Now()
	// NOOPs do not extend the login limit.
	c.cmd("NOOP")
	r := c.reply()
	if !strings.HasPrefix(last(r), `BYE "Disconnected: no login within`) {
		t.Fatalf("after the login limit: %q", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

// TestLoginTimeoutAfterUnauthenticate: a client that drops its login
// is held to the login limit again, from the UNAUTHENTICATE on.
func TestLoginTimeoutAfterUnauthenticate(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.LoginTimeout = 2 * time.Second })
	c := e.login()
	if r := last(c.cmd("UNAUTHENTICATE")); !strings.HasPrefix(r, "OK") {
		t.Fatalf("UNAUTHENTICATE: %s", r)
	}
	// The NOOP is answered, then the login limit ends the connection
	// (without it, only the 30-minute idle limit would).
	c.nc.SetReadDeadline(time.Now().Add(time.Minute))
	r := c.cmd("NOOP")
	if !strings.HasPrefix(last(r), "OK") {
		t.Fatalf("NOOP: %q", r)
	}
	if r := c.reply(); !strings.HasPrefix(last(r), `BYE "Disconnected: no login within`) {
		t.Fatalf("after the login limit: %q", r)
	}
}

func TestStartTLSInjection(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.reply()
	c.send("STARTTLS\r\nLISTSCRIPTS\r\n")
	if r := last(c.reply()); !strings.HasPrefix(r, "BYE") {
		t.Fatalf("commands pipelined after STARTTLS: %s", r)
	}
}

// testWriter sends the server's log to the test's.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/examples/fullserver/config"
	"github.com/mailagent/mailagent/store"
)

// startAll starts the server in-process with every listener on
// 127.0.0.1:0, the domain h.test and the user u@h.test (password
// "pw-of-u"), after edit has changed the configuration. It returns the
// server and its listeners' addresses by name.
func startAll(t *testing.T, edit func(*config.Config)) (*server, map[string]string) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Hostname = "mail.h.test"
	cfg.DNS.Resolver = "127.0.0.1:9"
	cfg.Listen = config.Listen{
		MX: "127.0.0.1:0", Submission: "127.0.0.1:0", Submissions: "127.0.0.1:0",
		IMAP: "127.0.0.1:0", IMAPS: "127.0.0.1:0", POP3: "127.0.0.1:0", POP3S: "127.0.0.1:0",
	}
	if edit != nil {
		edit(cfg)
	}
	ctx := context.Background()
	dir, err := store.Open(ctx, cfg.Store.Driver, cfg.StoreDSN(), nil)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := auth.HashPassword("pw-of-u")
	if err == nil {
		err = dir.AddDomain(ctx, "h.test")
	}
	if err == nil {
		err = dir.AddUser(ctx, &store.User{Address: "u@h.test", PasswordHash: hash})
	}
	dir.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cfg: cfg, log: slog.New(slog.DiscardHandler), out: io.Discard, serveErrs: make(chan error, 16)}
	err = s.start(ctx)
	t.Cleanup(s.stop)
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string]string{}
	for _, l := range s.listening {
		addrs[l[0]] = l[1]
	}
	return s, addrs
}

// wire is one client connection from a chosen loopback address, for
// replies read within a time limit and errors returned rather than
// failing the test, so that many run in parallel.
type wire struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialWire connects to addr from the address from (any port), with TLS
// from the first byte when tc is not nil. Every read and write must be
// done within limit of the dial.
func dialWire(addr, from string, tc *tls.Config, limit time.Duration) (*wire, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: limit}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(limit))
	if tc != nil {
		tconn := tls.Client(conn, tc)
		if err := tconn.Handshake(); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tconn
	}
	return &wire{conn: conn, r: bufio.NewReader(conn)}, nil
}

// line reads one line without its CRLF.
func (w *wire) line() (string, error) {
	l, err := w.r.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

// smtpReply reads an SMTP reply and returns its last line.
func (w *wire) smtpReply() (string, error) {
	for {
		l, err := w.line()
		if err != nil || len(l) < 4 || l[3] != '-' {
			return l, err
		}
	}
}

// cmd sends a command line and returns the reply: for SMTP its last
// line, for IMAP the tagged line of tag "a", for POP3 the status line.
func (w *wire) cmd(proto, line string) (string, error) {
	if _, err := io.WriteString(w.conn, line+"\r\n"); err != nil {
		return "", err
	}
	switch proto {
	case "smtp":
		return w.smtpReply()
	case "imap":
		for {
			l, err := w.line()
			if err != nil || strings.HasPrefix(l, "a ") {
				return l, err
			}
		}
	}
	return w.line()
}

// login logs in as user with pass over proto ("smtp": EHLO and AUTH
// PLAIN, "imap": LOGIN, "pop3": USER and PASS) on a connection whose
// greeting has not been read, and returns the reply to the password.
func (w *wire) login(proto, user, pass string) (string, error) {
	var greet string
	var err error
	if proto == "smtp" {
		greet, err = w.smtpReply()
	} else {
		greet, err = w.line()
	}
	if err != nil {
		return "", fmt.Errorf("greeting %q: %w", greet, err)
	}
	switch proto {
	case "smtp":
		if r, err := w.cmd("smtp", "EHLO client.test"); err != nil || !strings.HasPrefix(r, "250") {
			return r, fmt.Errorf("EHLO: %q, %v", r, err)
		}
		return w.cmd("smtp", "AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)))
	case "imap":
		return w.cmd("imap", fmt.Sprintf("a LOGIN %q %q", user, pass))
	}
	if r, err := w.cmd("pop3", "USER "+user); err != nil || !strings.HasPrefix(r, "+OK") {
		return r, fmt.Errorf("USER: %q, %v", r, err)
	}
	return w.cmd("pop3", "PASS "+pass)
}

// loginSucceeded reports whether reply accepts a login over proto.
func loginSucceeded(proto, reply string) bool {
	switch proto {
	case "smtp":
		return strings.HasPrefix(reply, "235 ")
	case "imap":
		return strings.HasPrefix(reply, "a OK")
	}
	return strings.HasPrefix(reply, "+OK")
}

// implicitTLS names the listener of each protocol with TLS from the
// first byte.
var implicitTLS = map[string]string{"smtp": "submissions", "imap": "imaps", "pop3": "pop3s"}

// A burst of 100 parallel wrong logins from one address, spread over
// submission AUTH, IMAP and POP3, has no more passwords verified than
// the throttle's allowance (10) plus the attempts already running when
// it ran out; every attempt gets a reply; and all the while the right
// password from another address (127.0.0.5) logs in on every protocol,
// however the burst went for the same account.
func TestLoginThrottleParallelBurst(t *testing.T) {
	t.Parallel()
	s, addrs := startAll(t, func(c *config.Config) { c.Limits.MaxConnectionsPerIP = 500 })
	const limit = 60 * time.Second
	tc := &tls.Config{InsecureSkipVerify: true}
	goodLogins := func() error {
		for _, proto := range []string{"smtp", "imap", "pop3"} {
			w, err := dialWire(addrs[implicitTLS[proto]], "127.0.0.5", tc, limit)
			if err != nil {
				return err
			}
			r, err := w.login(proto, "u@h.test", "pw-of-u")
			w.conn.Close()
			if err != nil || !loginSucceeded(proto, r) {
				return fmt.Errorf("%s login with the right password from 127.0.0.5: %q, %v", proto, r, err)
			}
		}
		return nil
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		refused = map[string]int{}
		errs    []error
	)
	for i := range 100 {
		proto := []string{"smtp", "imap", "pop3"}[i%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := dialWire(addrs[implicitTLS[proto]], "127.0.0.1", tc, limit)
			if err == nil {
				var r string
				r, err = w.login(proto, "u@h.test", fmt.Sprint("wrong-", i))
				w.conn.Close()
				if err == nil && loginSucceeded(proto, r) {
					err = fmt.Errorf("%s: wrong password accepted: %q", proto, r)
				}
				mu.Lock()
				refused[proto]++
				mu.Unlock()
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	// Meanwhile: the wrong logins are still being answered (their
	// failure delays run up to 15 s).
	if err := goodLogins(); err != nil {
		t.Error("during the burst:", err)
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if n := refused["smtp"] + refused["imap"] + refused["pop3"]; n != 100 {
		t.Errorf("%d of 100 wrong logins answered (%v)", n, refused)
	}
	if err := goodLogins(); err != nil {
		t.Error("after the burst:", err)
	}
	// The metric reports the Authenticator's count.
	mfs, err := s.stats.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var metric float64 = -1
	for _, mf := range mfs {
		if mf.GetName() == "mailagent_password_verifications_total" {
			metric = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if metric != float64(s.auth.Verifications()) {
		t.Errorf("mailagent_password_verifications_total = %v, want %d", metric, s.auth.Verifications())
	}
	// Six right logins were verified besides the burst's.
	burst := s.auth.Verifications() - 6
	t.Logf("passwords verified for 100 parallel wrong logins: %d", burst)
	if burst > 15 {
		t.Errorf("%d passwords verified for 100 parallel wrong logins, want at most 15 (allowance 10)", burst)
	}
	// The address that guessed is refused now, even with the right
	// password.
	w, err := dialWire(addrs["imaps"], "127.0.0.1", tc, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer w.conn.Close()
	if r, err := w.login("imap", "u@h.test", "pw-of-u"); err != nil || loginSucceeded("imap", r) {
		t.Errorf("right password from the guessing address after the burst: %q, %v; want refused", r, err)
	}
}

// With the users table locked in MariaDB by another client (LOCK TABLES
// users WRITE), a recipient, a login on submission, IMAP and POP3 each
// get a temporary reply within about store.query_timeout, never a
// permanent one and never a hang; once the lock is gone, all work again.
func TestDirectoryLockIsTemporaryFailure(t *testing.T) {
	dsn := tempMySQL(t, "mailagent_lock_")
	if code, out, errs := fs(t, storeDir(t, "mysql", dsn), "", "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d: %s%s", code, out, errs)
	}
	const timeout = time.Second
	_, addrs := startAll(t, func(c *config.Config) {
		c.Store.Driver, c.Store.DSN = "mysql", dsn
		c.Store.QueryTimeout = config.Duration{Duration: timeout}
	})
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "LOCK TABLES users WRITE"); err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{InsecureSkipVerify: true}
	// A reply must come within the query timeout plus the work around
	// it (the TLS handshake, EHLO, the failure's log line).
	within := timeout + 3*time.Second

	rcpt := func() (string, error) {
		w, err := dialWire(addrs["mx"], "127.0.0.1", nil, 30*time.Second)
		if err != nil {
			return "", err
		}
		defer w.conn.Close()
		if r, err := w.smtpReply(); err != nil || !strings.HasPrefix(r, "220") {
			return r, fmt.Errorf("greeting: %q, %v", r, err)
		}
		for _, c := range []string{"EHLO client.test", "MAIL FROM:<someone@elsewhere.test>"} {
			if r, err := w.cmd("smtp", c); err != nil || !strings.HasPrefix(r, "250") {
				return r, fmt.Errorf("%s: %q, %v", c, r, err)
			}
		}
		start := time.Now()
		r, err := w.cmd("smtp", "RCPT TO:<u@h.test>")
		if took := time.Since(start); took > within {
			return r, fmt.Errorf("RCPT answered after %v, want within %v", took, within)
		}
		return r, err
	}
	if r, err := rcpt(); err != nil || !strings.HasPrefix(r, "451 4.3.0") {
		t.Errorf("RCPT TO a user while the users table is locked: %q, %v; want 451 4.3.0", r, err)
	}
	login := func(proto string) (string, error) {
		w, err := dialWire(addrs[implicitTLS[proto]], "127.0.0.1", tc, 30*time.Second)
		if err != nil {
			return "", err
		}
		defer w.conn.Close()
		start := time.Now()
		r, err := w.login(proto, "u@h.test", "pw-of-u")
		if took := time.Since(start); took > within {
			return r, fmt.Errorf("%s login answered after %v, want within %v", proto, took, within)
		}
		return r, err
	}
	for proto, want := range map[string]string{"smtp": "454 4.7.0", "imap": "a NO [UNAVAILABLE]", "pop3": "-ERR [SYS/TEMP]"} {
		if r, err := login(proto); err != nil || !strings.HasPrefix(r, want) {
			t.Errorf("%s login while the users table is locked: %q, %v; want %s", proto, r, err, want)
		}
	}

	if _, err := conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	if r, err := rcpt(); err != nil || !strings.HasPrefix(r, "250") {
		t.Errorf("RCPT after the lock: %q, %v", r, err)
	}
	for _, proto := range []string{"smtp", "imap", "pop3"} {
		if r, err := login(proto); err != nil || !loginSucceeded(proto, r) {
			t.Errorf("%s login after the lock: %q, %v", proto, r, err)
		}
	}
}

// handshake connects to the listener name at addr, asks for TLS the way
// that listener offers it (STARTTLS, STLS, or from the first byte) and
// returns the handshake's outcome with client configuration tc.
func handshake(name, addr string, tc *tls.Config) (tls.ConnectionState, error) {
	implicit := map[string]bool{"submissions": true, "imaps": true, "pop3s": true}
	if implicit[name] {
		w, err := dialWire(addr, "127.0.0.1", tc, 30*time.Second)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer w.conn.Close()
		return w.conn.(*tls.Conn).ConnectionState(), nil
	}
	w, err := dialWire(addr, "127.0.0.1", nil, 30*time.Second)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer w.conn.Close()
	var r string
	switch name {
	case "mx", "submission":
		if r, err = w.smtpReply(); err == nil {
			r, err = w.cmd("smtp", "EHLO client.test")
		}
		if err == nil {
			r, err = w.cmd("smtp", "STARTTLS")
		}
		if err == nil && !strings.HasPrefix(r, "220") {
			err = fmt.Errorf("STARTTLS: %q", r)
		}
	case "imap":
		if r, err = w.line(); err == nil {
			r, err = w.cmd("imap", "a STARTTLS")
		}
		if err == nil && !strings.HasPrefix(r, "a OK") {
			err = fmt.Errorf("STARTTLS: %q", r)
		}
	case "pop3":
		if r, err = w.line(); err == nil {
			r, err = w.cmd("pop3", "STLS")
		}
		if err == nil && !strings.HasPrefix(r, "+OK") {
			err = fmt.Errorf("STLS: %q", r)
		}
	}
	if err != nil {
		return tls.ConnectionState{}, fmt.Errorf("before the handshake: %w", err)
	}
	tconn := tls.Client(w.conn, tc)
	if err := tconn.Handshake(); err != nil {
		return tls.ConnectionState{}, err
	}
	return tconn.ConnectionState(), nil
}

// Every listener whose clients are mail programs follows Mozilla's
// intermediate profile (TLS 1.2+, ECDHE with AEAD ciphers, X25519, P-256
// and P-384), and the MX accepts older peers (TLS 1.0, CBC), which would
// otherwise deliver in cleartext; tls.profile and tls.mx_profile change
// both.
func TestTLSProfilesOnTheWire(t *testing.T) {
	cbcOnly := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}
	tls10 := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}
	p521 := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
		CurvePreferences: []tls.CurveID{tls.CurveP521}}
	gcm12 := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
	tls13 := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}

	_, addrs := startAll(t, nil)
	for _, name := range []string{"mx", "submission", "submissions", "imap", "imaps", "pop3", "pop3s"} {
		mx := name == "mx"
		for _, c := range []struct {
			client string
			tc     *tls.Config
			ok     bool
		}{
			{"TLS 1.2 ECDHE-ECDSA-AES128-SHA only", cbcOnly, mx},
			{"TLS 1.0", tls10, mx},
			{"TLS 1.2 P-521 only", p521, mx},
			{"TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256", gcm12, true},
			{"TLS 1.3", tls13, true},
		} {
			_, err := handshake(name, addrs[name], c.tc)
			if (err == nil) != c.ok {
				t.Errorf("%s, client %s: handshake error %v, want accepted %v", name, c.client, err, c.ok)
			}
			if err != nil && strings.HasPrefix(err.Error(), "before the handshake") {
				t.Errorf("%s: %v", name, err)
			}
		}
	}

	// The keys: modern everywhere refuses TLS 1.2, on the MX too.
	_, addrs = startAll(t, func(c *config.Config) { c.TLS.Profile, c.TLS.MXProfile = "modern", "modern" })
	for _, name := range []string{"mx", "submissions", "imaps", "pop3s"} {
		if _, err := handshake(name, addrs[name], gcm12); err == nil {
			t.Errorf("%s with profile modern accepted TLS 1.2", name)
		}
		if st, err := handshake(name, addrs[name], tls13); err != nil || st.Version != tls.VersionTLS13 {
			t.Errorf("%s with profile modern refused TLS 1.3: %v", name, err)
		}
	}
}

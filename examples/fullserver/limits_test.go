package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/examples/fullserver/config"
)

// TestMaxConnectionsProcessWide: limits.max_connections is one limit for
// every listener together. With it at 4 and four connections open on
// four listeners, a fifth on any listener gets that protocol's busy
// reply, over TLS on the implicit-TLS ones; once one closes, another is
// let in.
func TestMaxConnectionsProcessWide(t *testing.T) {
	_, addrs := startAll(t, func(c *config.Config) {
		c.Limits.MaxConnections = 4
		c.Limits.MaxConnectionsPerIP = 100
		c.Listen.HTTP = "127.0.0.1:0"
	})
	greeting := map[string]string{"mx": "220 ", "submission": "220 ", "imap": "* OK", "pop3": "+OK"}
	busy := map[string]string{"mx": "421 4.7.0 ", "submission": "421 4.7.0 ", "imap": "* BYE [UNAVAILABLE] ", "pop3": "-ERR [SYS/TEMP] "}
	for _, p := range []string{"submission", "imap", "pop3"} {
		busy[p+"s"] = busy[p]
	}
	first := func(name string) (*wire, string) {
		t.Helper()
		var tc *tls.Config
		if strings.HasSuffix(name, "s") {
			tc = &tls.Config{InsecureSkipVerify: true}
		}
		w, err := dialWire(addrs[name], "127.0.0.1", tc, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { w.conn.Close() })
		l, err := w.line()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return w, l
	}
	held := map[string]*wire{}
	for _, name := range []string{"mx", "submission", "imap", "pop3"} {
		w, l := first(name)
		if !strings.HasPrefix(l, greeting[name]) {
			t.Fatalf("%s connection %d: %q, want a greeting", name, len(held)+1, l)
		}
		held[name] = w
	}
	for _, name := range []string{"mx", "submission", "imap", "pop3", "submissions", "imaps", "pop3s"} {
		w, l := first(name)
		if !strings.HasPrefix(l, busy[name]) {
			t.Fatalf("%s, fifth connection of the process: %q, want %q", name, l, busy[name])
		}
		if l, err := w.line(); err == nil {
			t.Fatalf("%s: %q after the busy reply, want the close", name, l)
		}
	}
	// The HTTP listener (ACME challenges, redirects) has no busy reply:
	// a connection over the limit is closed before a request is read.
	hc, err := net.DialTimeout("tcp", addrs["http"], 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	hc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(hc, "GET / HTTP/1.0\r\nHost: mail.h.test\r\n\r\n")
	// (A reset, since the request is left unread, counts as the close.)
	if b, err := io.ReadAll(hc); len(b) != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("http, fifth connection of the process: %q, %v; want a close without a reply", b, err)
	}
	held["pop3"].conn.Close()
	// The slot is free once the server has seen the close.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, l := first("imap")
		if strings.HasPrefix(l, "* OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after a close: %q", l)
		}
	}
}

// TestTimeoutKeys: the limits section's time limits reach every
// listener: with login_timeout and smtp_command_timeout at 1 s, a
// silent client is told so on each protocol, in about that time.
func TestTimeoutKeys(t *testing.T) {
	_, addrs := startAll(t, func(c *config.Config) {
		c.Limits.LoginTimeout = config.Duration{Duration: time.Second}
		c.Limits.SMTPCommandTimeout = config.Duration{Duration: time.Second}
	})
	want := map[string]string{
		"mx":         "421 4.4.2 ",
		"submission": "421 4.4.2 ",
		"imap":       "* BYE Disconnected: no login within 1 seconds.",
		"pop3":       "-ERR Disconnected: no login within 1 seconds.",
	}
	for name, reply := range want {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			w, err := dialWire(addrs[name], "127.0.0.1", nil, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer w.conn.Close()
			if _, err := w.line(); err != nil { // the greeting
				t.Fatal(err)
			}
			l, err := w.line()
			if err != nil || !strings.HasPrefix(l, reply) {
				t.Fatalf("got %q, %v; want %q", l, err, reply)
			}
			if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
				t.Fatalf("%q after %v, want about 1 s", l, d)
			}
			if l, err := w.line(); err == nil {
				t.Fatalf("%q after the timeout, want the close", l)
			}
		})
	}
}

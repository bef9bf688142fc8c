// Package interop holds the one rule every test that talks to an outside
// program (Dovecot, Postfix, swaks, python3, MariaDB...) follows: when
// the program is missing the test is skipped with a message saying so,
// except under MAILAGENT_INTEROP=1 — set by CI, which installs them all —
// where a missing program fails the test, so that an interop test can
// never pass by not running.
package interop

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Required reports whether MAILAGENT_INTEROP=1 demands the outside
// programs.
func Required() bool { return os.Getenv("MAILAGENT_INTEROP") == "1" }

// Require ends the test because something outside it is missing: a skip,
// or a failure when Required.
func Require(t testing.TB, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (required by MAILAGENT_INTEROP=1)", why)
		return
	}
	t.Skipf("%s; skipping interop test", why)
}

// Program returns the path of the program name, looked up in PATH and in
// /usr/sbin and /usr/bin (daemons such as dovecot and postfix live in
// sbin, often not in a test's PATH), or ends the test with Require.
func Program(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	Require(t, "%s is not installed", name)
	return ""
}

// MySQLDSN returns MAILAGENT_MYSQL_DSN, the MariaDB/MySQL server tests
// may create databases on, or ends the test with Require.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	return envDSN(t, "MAILAGENT_MYSQL_DSN")
}

// envDSN returns the environment variable name, or ends the test with
// Require when it is not set.
func envDSN(t testing.TB, name string) string {
	t.Helper()
	dsn := os.Getenv(name)
	if dsn == "" {
		Require(t, "%s is not set", name)
	}
	return dsn
}

// WaitListening polls each address, TCP "host:port" or a Unix socket
// path, until it accepts a connection: outside servers give no readiness
// signal to wait for. The test fails if what has not listened within 30
// seconds, or at once if exited (the server's process ending; nil when
// not watched) yields first.
func WaitListening(tb testing.TB, what string, exited <-chan error, addrs ...string) {
	tb.Helper()
	WaitListeningFor(tb, what, 30*time.Second, exited, addrs...)
}

// WaitListeningFor is WaitListening with another limit, for servers
// that take long to start (rspamd compiles its rules first).
func WaitListeningFor(tb testing.TB, what string, limit time.Duration, exited <-chan error, addrs ...string) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for _, a := range addrs {
		network := "tcp"
		if strings.HasPrefix(a, "/") {
			network = "unix"
		}
		for {
			c, err := net.Dial(network, a)
			if err == nil {
				c.Close()
				break
			}
			select {
			case werr := <-exited:
				tb.Fatalf("%s exited before listening on %s: %v", what, a, werr)
				return
			default:
			}
			if time.Now().After(deadline) {
				tb.Fatalf("%s did not listen on %s within %v: %v", what, a, limit, err)
				return
			}
			time.Sleep(20 * time.Millisecond) // polling: see above
		}
	}
}

// FreePort returns a loopback "host:port" no one listens on now, for an
// outside daemon that must be told its port before it starts.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

package pop3

import (
	"bufio"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/internal/memnet"
)

// inBubble runs f in a synctest bubble against a server on an
// in-memory listener, so that deadlines follow the bubble's clock: the
// tests below wait minutes of it and no real time.
func inBubble(t *testing.T, f func(t *testing.T, e *testEnv, dial func() *testClient), opts ...envOption) {
	synctest.Test(t, func(t *testing.T) {
		e := newServerEnv(t, opts...)
		l := memnet.Listen()
		served := make(chan error, 1)
		go func() { served <- e.srv.Serve(l) }()
		t.Cleanup(func() {
			e.srv.Close()
			if err := <-served; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		})
		dial := func() *testClient {
			nc, err := l.Dial()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { nc.Close() })
			c := &testClient{t: t, nc: nc, r: bufio.NewReader(nc)}
			c.expect("+OK pop.example.org POP3 ready.")
			return c
		}
		f(t, e, dial)
	})
}

// expectTimeout reads the server's line to a client that ran into a
// limit, which must be want, within after (±1 s) of start, and then the
// close.
func expectTimeout(t *testing.T, c *testClient, start time.Time, after time.Duration, want string) {
	t.Helper()
	c.nc.SetReadDeadline(time.Time{})
	got, err := c.r.ReadString('\n')
	if err != nil || got != want+"\r\n" {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	if d := time.Since(start); d < after-time.Second || d > after+time.Second {
		t.Fatalf("%q after %v, want %v", want, d, after)
	}
	if l, err := c.r.ReadString('\n'); err == nil {
		t.Fatalf("after the timeout: %q, want the connection closed", l)
	}
}

// TestCommandLineDeadline: a command line must arrive whole within
// IdleTimeout (10 minutes) of the server's readiness: a logged-in client
// sending one byte every 5 s is disconnected, and deletes nothing.
func TestCommandLineDeadline(t *testing.T) {
	inBubble(t, func(t *testing.T, e *testEnv, dial func() *testClient) {
		u := e.addUser("u@example.org", "pw")
		e.deliver(u, sizedMessage("a", 100))
		c := dial()
		c.cmd("USER u@example.org", "+OK")
		c.cmdPrefix("PASS pw", "+OK Logged in")
		c.cmd("DELE 1", "+OK Message 1 deleted.")
		start := time.Now()
		memnet.Trickle(t, c.nc, strings.Split("NOOP"+strings.Repeat(" ", 250), ""), 5*time.Second)
		expectTimeout(t, c, start, 10*time.Minute, "-ERR Disconnected for inactivity.")
		e.waitUnlocked(u)
		if f := e.files(u); len(f) != 1 {
			t.Fatalf("after a timeout the maildrop holds %q", f)
		}
	})
}

// TestCommandLineDeadlineEachLine: each line has its own time, so
// prompt commands keep a session as long as the client likes.
func TestCommandLineDeadlineEachLine(t *testing.T) {
	inBubble(t, func(t *testing.T, e *testEnv, dial func() *testClient) {
		e.addUser("u@example.org", "pw")
		c := dial()
		c.cmd("USER u@example.org", "+OK")
		c.cmdPrefix("PASS pw", "+OK Logged in")
		for range 5 {
			time.Sleep(9 * time.Minute)
			c.cmd("NOOP", "+OK")
		}
		c.cmdPrefix("QUIT", "+OK")
	})
}

// TestLoginTimeout: a client must log in within 60 s of connecting,
// however many commands it sends meanwhile; the SASL exchange and a
// login just in time are not cut short.
func TestLoginTimeout(t *testing.T) {
	inBubble(t, func(t *testing.T, e *testEnv, dial func() *testClient) {
		e.addUser("u@example.org", "pw")
		c := dial()
		start := time.Now()
		for range 5 {
			time.Sleep(10 * time.Second)
			c.cmd("NOOP", "-ERR Not logged in.")
		}
		expectTimeout(t, c, start, time.Minute, "-ERR Disconnected: no login within 60 seconds.")

		// Stuck in an AUTH exchange.
		c = dial()
		start = time.Now()
		c.cmd("AUTH PLAIN", "+ ")
		expectTimeout(t, c, start, time.Minute, "-ERR Disconnected: no login within 60 seconds.")

		// Logged in at 50 s: the limit is gone.
		c = dial()
		time.Sleep(50 * time.Second)
		c.cmd("USER u@example.org", "+OK")
		c.cmdPrefix("PASS pw", "+OK Logged in")
		time.Sleep(5 * time.Minute)
		c.cmd("NOOP", "+OK")
	}, func(o *Options, _ *auth.Authenticator) { o.IdleTimeout = 0 })
}

package imap

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mailagent/mailagent/internal/memnet"
)

// inBubble runs f in a synctest bubble against a server on an
// in-memory listener, so that deadlines follow the bubble's clock: the
// tests below wait minutes of it and no real time.
func inBubble(t *testing.T, tune func(*Options), f func(t *testing.T, st *testStack, dial func() *client)) {
	synctest.Test(t, func(t *testing.T) {
		st := newTestStack(t)
		opts := st.options()
		if tune != nil {
			tune(&opts)
		}
		srv, err := NewServer(opts)
		must(t, err)
		l := memnet.Listen()
		done := make(chan error, 1)
		go func() { done <- srv.Serve(l) }()
		t.Cleanup(func() {
			srv.Close()
			<-done
		})
		f(t, st, func() *client {
			c, err := l.Dial()
			must(t, err)
			return greeted(t, c)
		})
	})
}

// expectBye reads up to the server's BYE, which must say want and come
// within after (±1 s) of start, and then the close.
func expectBye(t *testing.T, cl *client, start time.Time, after time.Duration, want string) {
	t.Helper()
	cl.c.SetReadDeadline(time.Time{})
	for {
		l, err := cl.r.ReadString('\n')
		if err != nil {
			t.Fatalf("no BYE: %v", err)
		}
		if strings.HasPrefix(l, "* BYE ") {
			if l != "* BYE "+want+"\r\n" {
				t.Fatalf("got %q, want BYE %q", l, want)
			}
			break
		}
	}
	if d := time.Since(start); d < after-time.Second || d > after+time.Second {
		t.Fatalf("BYE after %v, want %v", d, after)
	}
	if l, err := cl.r.ReadString('\n'); err == nil {
		t.Fatalf("after the BYE: %q, want the connection closed", l)
	}
}

// messages is the number of messages in alice's INBOX, seen over a new
// connection.
func messages(t *testing.T, dial func() *client) string {
	t.Helper()
	cl := dial()
	cl.login("alice@local.example")
	lines := cl.ok("STATUS INBOX (MESSAGES)")
	cl.ok("LOGOUT")
	return strings.Join(lines, "\n")
}

// TestCommandLineDeadline: a command line must arrive whole within
// IdleTimeout (30 minutes) of the server's readiness; a client sending
// one byte every 5 s is told BYE.
func TestCommandLineDeadline(t *testing.T) {
	inBubble(t, nil, func(t *testing.T, st *testStack, dial func() *client) {
		cl := dial()
		cl.login("alice@local.example")
		start := time.Now()
		memnet.Trickle(t, cl.c, strings.Split("a2 NOOP"+strings.Repeat(" ", 1000), ""), 5*time.Second)
		expectBye(t, cl, start, 30*time.Minute, "Disconnected for inactivity.")
	})
}

// TestCommandLineDeadlineEachLine: each line has its own time, and a
// synchronizing literal the server refuses leaves the next command a
// line, not literal data.
func TestCommandLineDeadlineEachLine(t *testing.T) {
	inBubble(t, nil, func(t *testing.T, st *testStack, dial func() *client) {
		cl := dial()
		cl.login("alice@local.example")
		cl.expect("NO [TOOBIG]", "CREATE {5000}")
		for range 3 {
			time.Sleep(25 * time.Minute)
			cl.ok("NOOP")
		}
		cl.ok("LOGOUT")
	})
}

// TestLoginTimeoutFromConnect: a client must log in within 60 s of connecting,
// however many commands it sends meanwhile; once logged in, that limit
// is gone.
func TestLoginTimeoutFromConnect(t *testing.T) {
	inBubble(t, nil, func(t *testing.T, st *testStack, dial func() *client) {
		cl := dial()
		start := time.Now()
		for range 5 {
			time.Sleep(10 * time.Second)
			cl.ok("NOOP")
			cl.ok("CAPABILITY")
		}
		expectBye(t, cl, start, time.Minute, "Disconnected: no login within 60 seconds.")

		// Stuck at the start of LOGIN's literal: literal data is owed
		// at the rate after 10 s.
		cl = dial()
		cl.send("a1 LOGIN {19}")
		if l := cl.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("LOGIN literal: %q", l)
		}
		start = time.Now()
		expectBye(t, cl, start, 10*time.Second, "Literal data arriving too slowly, closing the connection.")

		cl = dial()
		time.Sleep(50 * time.Second)
		cl.login("alice@local.example")
		time.Sleep(10 * time.Minute)
		cl.ok("NOOP")
	})
}

// TestAppendRate: APPEND's message must average 500 bytes/s after its
// first 10 s. A client that sends 10,000 bytes and then trickles is told
// BYE once they no longer cover the time (10 s + 20 s), and nothing is
// appended.
func TestAppendRate(t *testing.T) {
	inBubble(t, nil, func(t *testing.T, st *testStack, dial func() *client) {
		cl := dial()
		cl.login("alice@local.example")
		cl.send("a2 APPEND INBOX {100000}")
		if l := cl.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("APPEND: %q", l)
		}
		start := time.Now()
		head := "Subject: slow\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 100)
		memnet.Trickle(t, cl.c, append([]string{head[:10_000]}, strings.Split(strings.Repeat("y", 1000), "")...), 5*time.Second)
		expectBye(t, cl, start, 30*time.Second, "Literal data arriving too slowly, closing the connection.")
		if got := messages(t, dial); !strings.Contains(got, "MESSAGES 0") {
			t.Fatalf("after a cut APPEND: %q", got)
		}
	})
}

// TestAppendSlowButSteady: a message above the rate is taken however
// long it takes.
func TestAppendSlowButSteady(t *testing.T) {
	inBubble(t, nil, func(t *testing.T, st *testStack, dial func() *client) {
		cl := dial()
		cl.login("alice@local.example")
		line := strings.Repeat("z", 598) + "\r\n"
		msg := "Subject: steady\r\n\r\n" + strings.Repeat(line, 500)
		cl.send(fmt.Sprintf("a2 APPEND INBOX {%d}", len(msg)))
		if l := cl.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("APPEND: %q", l)
		}
		for i := 0; i < len(msg); i += 600 {
			fmt.Fprint(cl.c, msg[i:min(i+600, len(msg))])
			time.Sleep(time.Second)
		}
		cl.send("")
		if _, st := cl.until("a2"); !strings.HasPrefix(st, "OK") {
			t.Fatalf("APPEND: %q", st)
		}
		if got := messages(t, dial); !strings.Contains(got, "MESSAGES 1") {
			t.Fatalf("after the APPEND: %q", got)
		}
	})
}

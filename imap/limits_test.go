package imap

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/connlimit/connlimittest"
)

func TestHugeLiterals(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	// A synchronizing literal beyond the limits is refused before the
	// client sends it, with nothing allocated for it.
	cl.login("alice@local.example")
	cl.expect("NO [TOOBIG]", "APPEND INBOX {4294967295}")
	cl.expect("NO [TOOBIG]", `APPEND INBOX (\Seen) {4294967295}`)
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 8<<20 {
		t.Fatalf("refusing huge literals allocated %d bytes", d)
	}
	cl.ok("NOOP")
	// A large non-synchronizing literal (LITERAL- allows 4096 bytes)
	// is a protocol violation.
	cl.expect("BAD", "APPEND INBOX {100000+}")
}

func TestLongLineAndNesting(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")

	// Nesting beyond the decoder's depth limit is refused, and the
	// connection stays usable.
	deep := strings.Repeat("(", 1500) + "ALL" + strings.Repeat(")", 1500)
	if _, st := cl.cmd("SEARCH %s", deep); strings.HasPrefix(st, "OK") {
		t.Fatalf("deep nesting: %q", st)
	}
	cl.ok("NOOP")
	// A command line beyond 50 KiB ends the connection rather than
	// being buffered.
	cl.send("x1 SEARCH SUBJECT " + strings.Repeat("a", 100<<10))
	cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(cl.r)
	if err != nil {
		t.Fatalf("connection not closed: %v", err)
	}
	if strings.Contains(string(rest), "x1 OK") {
		t.Fatalf("over-long line accepted: %q", rest)
	}
}

func TestUnknownCommandBeforeLogin(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	// A cross-protocol attempt (an HTTP request) ends the connection.
	cl.send("GET / HTTP/1.1")
	cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(cl.r)
	if err != nil || !strings.Contains(string(rest), "\r\n* BYE") {
		t.Fatalf("unknown command before login: %q, %v", rest, err)
	}
}

func TestConnectionLimits(t *testing.T) {
	st := newTestStack(t)
	opts := st.options()
	opts.MaxConnsPerIP = 2
	opts.MaxConnsPerUser = 1
	_, addr := st.serve(opts)
	a := dial(t, addr)
	a.login("alice@local.example")
	b := dial(t, addr)
	// Per user: a second session of alice is refused, bob is fine.
	b.expect("NO [UNAVAILABLE]", "LOGIN alice@local.example %q", testPassword)
	b.login("bob@local.example")
	// Per address: a third connection is refused at once.
	c := dialRaw(t, addr)
	if l := c.line(); !strings.HasPrefix(l, "* BYE [UNAVAILABLE]") {
		t.Fatalf("third connection: %q", l)
	}
	// When alice leaves, her slot and the address's are free again.
	a.ok("LOGOUT")
	a.c.Close()
	b.ok("LOGOUT")
	b.c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c := dialRaw(t, addr)
		l := c.line()
		if strings.HasPrefix(l, "* OK") {
			c.login("alice@local.example")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection slots not released: %q", l)
		}
	}
}

// dialRaw connects without expecting a greeting.
func dialRaw(t *testing.T, addr string) *client {
	t.Helper()
	cl := &client{t: t}
	c, err := netDial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl.c = c
	cl.r = newReader(c)
	return cl
}

func TestLoginTimeout(t *testing.T) {
	st := newTestStack(t)
	opts := st.options()
	opts.LoginTimeout = 300 * time.Millisecond
	opts.IdleTimeout = 5 * time.Second
	_, addr := st.serve(opts)
	cl := dial(t, addr)
	cl.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := io.ReadAll(cl.r); err != nil {
		t.Fatalf("not closed before login: %v", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatal("login timeout not applied")
	}
	// After login the longer timeout applies: the connection outlives
	// the login timeout.
	cl = dial(t, addr)
	cl.login("alice@local.example")
	cl.c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := cl.r.ReadByte(); err == nil || !isTimeout(err) {
		t.Fatalf("authenticated connection closed early: %v", err)
	}
	cl.c.SetReadDeadline(time.Time{})
	cl.ok("NOOP")
}

// TestSilentTLSClient: a client that opens an implicit-TLS connection
// and never says hello is dropped after the login timeout.
func TestSilentTLSClient(t *testing.T) {
	st := newTestStack(t)
	opts := st.options()
	opts.ImplicitTLS = true
	opts.LoginTimeout = 300 * time.Millisecond
	_, addr := st.serve(opts)
	c, err := netDial(addr)
	must(t, err)
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("silent TLS client not dropped: %v", err)
	}
}

// TestNonSyncLiterals: LITERAL- allows non-synchronizing literals up to
// 4096 bytes; they are read without a continuation request.
func TestNonSyncLiterals(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	wantLine(t, cl.ok("CAPABILITY"), "LITERAL-")
	cl.send("a1 LOGIN {19+}\r\nalice@local.example {21+}\r\n" + testPassword)
	if _, st := cl.until("a1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("LOGIN with literals: %q", st)
	}
	cl.send(fmt.Sprintf("a2 APPEND INBOX {%d+}\r\n%s", len(testMessage), testMessage))
	lines, tagged := cl.until("a2")
	if !strings.HasPrefix(tagged, "OK [APPENDUID") || has(lines, "+ ") {
		t.Fatalf("APPEND with a non-synchronizing literal: %q %q", lines, tagged)
	}
}

// Two addresses of one IPv6 /64 are one client for MaxConnsPerIP; another
// /64 is not.
func TestConnectionLimitIPv6Network(t *testing.T) {
	st := newTestStack(t)
	opts := st.options()
	opts.MaxConnsPerIP = 1
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(connlimittest.NewListener(l,
			netip.MustParseAddrPort("[2001:db8:1:2::1]:1025"),
			netip.MustParseAddrPort("[2001:db8:1:2:a:b:c:d]:1025"),
			netip.MustParseAddrPort("[2001:db8:1:3::1]:1025")))
	}()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	// Each dial reads its greeting first, so the server accepts in order.
	addr := l.Addr().String()
	if g := dialRaw(t, addr).line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("first connection: %q", g)
	}
	if g := dialRaw(t, addr).line(); !strings.HasPrefix(g, "* BYE [UNAVAILABLE] Too many connections from your address") {
		t.Fatalf("second address of the same /64: %q", g)
	}
	if g := dialRaw(t, addr).line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("another /64: %q", g)
	}
}

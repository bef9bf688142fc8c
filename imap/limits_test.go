package imap

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
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
	// A non-synchronizing message beyond APPENDLIMIT (LITERAL+ allows
	// up to it) is a protocol violation.
	cl.expect("BAD [TOOBIG]", "APPEND INBOX {%d+}", 50<<20+1)
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
	// The address's slot and the user's are freed as the sessions end,
	// not as LOGOUT is answered: wait for both.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c := dialRaw(t, addr)
		l := c.line()
		if strings.HasPrefix(l, "* OK") {
			_, l = c.cmd("LOGIN alice@local.example %q", testPassword)
			if strings.HasPrefix(l, "OK") {
				break
			}
		}
		c.c.Close()
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
	// the login timeout, which counts from the connect (a server whose
	// limit a loaded test machine cannot miss; TestLoginTimeoutFromConnect
	// shows the same on the bubble's clock).
	opts.LoginTimeout = 1500 * time.Millisecond
	_, addr = st.serve(opts)
	connected := time.Now()
	cl = dial(t, addr)
	cl.login("alice@local.example")
	cl.c.SetReadDeadline(connected.Add(2 * time.Second))
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

// TestNonSyncLiterals: LITERAL+ (RFC 7888) takes non-synchronizing
// literals up to the limits: 4096 bytes for strings, APPENDLIMIT for a
// message. They are read without a continuation request.
func TestNonSyncLiterals(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	wantLine(t, cl.ok("CAPABILITY"), "LITERAL+")
	cl.send("a1 LOGIN {19+}\r\nalice@local.example {21+}\r\n" + testPassword)
	if _, st := cl.until("a1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("LOGIN with literals: %q", st)
	}
	cl.send(fmt.Sprintf("a2 APPEND INBOX {%d+}\r\n%s", len(testMessage), testMessage))
	lines, tagged := cl.until("a2")
	if !strings.HasPrefix(tagged, "OK [APPENDUID") || has(lines, "+ ") {
		t.Fatalf("APPEND with a non-synchronizing literal: %q %q", lines, tagged)
	}
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("y", 98)+"\r\n", 1000)
	cl.send(fmt.Sprintf("a3 APPEND INBOX {%d+}\r\n%s", len(big), big))
	if lines, tagged := cl.until("a3"); !strings.HasPrefix(tagged, "OK [APPENDUID") || has(lines, "+ ") {
		t.Fatalf("APPEND of %d bytes with LITERAL+: %q %q", len(big), lines, tagged)
	}
	cl.ok("SELECT INBOX")
	wantLine(t, cl.ok("FETCH 2 RFC822.SIZE"), fmt.Sprintf("RFC822.SIZE %d", len(big)))
	// A string beyond 4096 bytes is still refused, and its bytes never
	// read as commands.
	cl.send("a4 SEARCH SUBJECT {5000+}\r\n" + strings.Repeat("z", 5000))
	closedWithBye(t, cl, "a4")
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

// TestHugeSyncLiteralRefused: a synchronizing literal beyond what a
// command other than APPEND takes is refused at once, with no
// continuation request, and the connection goes on; over plain TCP and
// implicit TLS.
func TestHugeSyncLiteralRefused(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	tlsOpts := st.options()
	tlsOpts.ImplicitTLS = true
	_, tlsAddr := st.serve(tlsOpts)
	for _, useTLS := range []bool{false, true} {
		cl := dial(t, addr)
		if useTLS {
			cl = dialTLS(t, tlsAddr)
		}
		refused := func(tag, cmd string) {
			t.Helper()
			cl.send(tag + " " + cmd)
			l := cl.line()
			if !strings.HasPrefix(l, tag+" NO [TOOBIG]") {
				t.Fatalf("TLS %t: %s: got %q, want a tagged NO [TOOBIG] and no continuation request", useTLS, cmd, l)
			}
			cl.ok("NOOP")
		}
		refused("b1", "LOGIN {4294967295}")
		refused("b2", "LOGIN alice@local.example {4294967295}")
		refused("b3", "LOGIN alice@local.example {4097}")
		cl.login("alice@local.example")
		refused("b4", "SELECT {4294967295}")
		refused("b5", "SELECT {99999999999999999999999999}")
		refused("b6", "CREATE {4294967295}")
		refused("b7", "APPEND {4294967295}")
		cl.ok("SELECT INBOX")
		refused("b8", "SEARCH SUBJECT {4294967295}")
		refused("b9", "UID SEARCH CHARSET UTF-8 BODY {4294967295}")
		refused("b10", "SEARCH SUBJECT {4294967295} ")
	}
}

// TestPipelinedHugeLiteral: commands sent together with a refused one
// are answered in order.
func TestPipelinedHugeLiteral(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.send("p1 NOOP\r\np2 SELECT {4294967295}\r\np3 SELECT INBOX")
	for _, want := range []string{"p1 OK", "p2 NO [TOOBIG]"} {
		if l := cl.line(); !strings.HasPrefix(l, want) {
			t.Fatalf("got %q, want %q", l, want)
		}
	}
	if lines, st := cl.until("p3"); !strings.HasPrefix(st, "OK") || has(lines, "+ ") {
		t.Fatalf("SELECT after the refused command: %q %q", lines, st)
	}
}

// TestLiteralsWithinLimits: synchronizing literals a command takes still
// get their continuation request and work.
func TestLiteralsWithinLimits(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	literal := func(s string) {
		t.Helper()
		if l := cl.line(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("got %q, want a continuation request", l)
		}
		fmt.Fprint(cl.c, s)
	}
	fmt.Fprintf(cl.c, "l1 LOGIN {%d}\r\n", len("alice@local.example"))
	literal(fmt.Sprintf("alice@local.example {%d}\r\n", len(testPassword)))
	literal(testPassword + "\r\n")
	if _, st := cl.until("l1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("LOGIN with literals: %q", st)
	}
	fmt.Fprint(cl.c, "l2 SELECT {5}\r\n")
	literal("INBOX\r\n")
	if _, st := cl.until("l2"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("SELECT with a literal: %q", st)
	}
	// The mailbox name as a literal, then the message.
	fmt.Fprint(cl.c, "l3 APPEND {5}\r\n")
	literal(fmt.Sprintf("INBOX (\\Seen) {%d}\r\n", len(testMessage)))
	literal(testMessage + "\r\n")
	if _, st := cl.until("l3"); !strings.HasPrefix(st, "OK [APPENDUID") {
		t.Fatalf("APPEND with literals: %q", st)
	}
	wantLine(t, cl.ok("SEARCH SUBJECT {5+}\r\nHello"), "* SEARCH 1")
	cl.ok("NOOP")
}

// closedWithBye reads what is left of the connection: it must end, with
// a BYE, and tag's reply (when not empty) must be BAD.
func closedWithBye(t *testing.T, cl *client, tag string) string {
	t.Helper()
	cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(cl.r)
	if err != nil {
		t.Fatalf("connection not closed: %v (got %q)", err, rest)
	}
	if !strings.Contains(string(rest), "* BYE") || (tag != "" && !strings.Contains(string(rest), tag+" BAD")) {
		t.Fatalf("got %q, want %s BAD and BYE", rest, tag)
	}
	return string(rest)
}

// TestNonSyncLiteralInjection: the bytes of a non-synchronizing literal
// too large to take are never read as commands: the connection ends
// before them. The literal holds a CREATE; the folder must not exist.
func TestNonSyncLiteralInjection(t *testing.T) {
	st := newTestStack(t)
	opts := st.options()
	opts.AppendLimit = 2000
	_, addr := st.serve(opts)
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)
	payload := func(n int) string {
		p := "Subject: x\r\n\r\n" + strings.Repeat("a", 100) + "\r\nz1 CREATE Injected\r\n"
		return p + strings.Repeat("b", n-len(p))
	}
	for _, c := range []struct{ name, cmd string }{
		{"APPEND beyond LITERAL-", "APPEND INBOX {%d+}"},
		{"APPEND beyond APPENDLIMIT", "APPEND INBOX {%d+}"},
		{"literal8", "APPEND INBOX ~{%d+}"},
		{"SEARCH", "SEARCH SUBJECT {%d+}"},
		{"not a literal", "SEARCH SUBJECT {%d-}"},
		{"after a literal", "SEARCH SUBJECT {1+}\r\nx BODY {%d+}"},
	} {
		size := 5000
		if c.name == "APPEND beyond APPENDLIMIT" {
			size = 3000
		}
		cl := dial(t, addr)
		cl.login("alice@local.example")
		cl.ok("SELECT INBOX")
		cl.send("a9 " + fmt.Sprintf(c.cmd, size) + "\r\n" + payload(size))
		tag := "a9"
		if c.name == "after a literal" {
			tag = "" // part of the command was read: BYE alone
		}
		closedWithBye(t, cl, tag)
		if _, err := os.Stat(filepath.Join(path, ".Injected")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: literal data executed as a command: %v", c.name, err)
		}
	}
	cl := dial(t, addr)
	cl.login("alice@local.example")
	if lines := cl.ok(`LIST "" *`); has(lines, "Injected") {
		t.Fatalf("literal data executed as a command: %q", lines)
	}
	// Before login too.
	cl = dial(t, addr)
	cl.send("a1 LOGIN {5000+}\r\n" + payload(5000))
	closedWithBye(t, cl, "a1")
}

// TestHugeLiteralInCommandTail: a synchronizing literal too large after
// another literal of the same command is refused like the first: the
// client waits for the continuation request, so the command ends there
// and the connection goes on.
func TestHugeLiteralInCommandTail(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	fmt.Fprintf(cl.c, "t1 LOGIN {%d}\r\n", len("alice@local.example"))
	if l := cl.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("got %q, want a continuation request", l)
	}
	fmt.Fprint(cl.c, "alice@local.example {4294967295}\r\n")
	if l := cl.line(); !strings.HasPrefix(l, "t1 NO [TOOBIG]") {
		t.Fatalf("huge literal after another: %q", l)
	}
	cl.ok("NOOP")
}

// TestAppendLimit: APPEND beyond APPENDLIMIT is refused before the
// message is sent, and the connection goes on.
func TestAppendLimit(t *testing.T) {
	st := newTestStack(t)
	opts := st.options()
	opts.AppendLimit = 1000
	_, addr := st.serve(opts)
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), "APPENDLIMIT=1000")
	cl.send("x1 APPEND INBOX {1001}")
	if l := cl.line(); !strings.HasPrefix(l, "x1 NO [TOOBIG]") {
		t.Fatalf("got %q, want NO [TOOBIG] and no continuation request", l)
	}
	cl.ok("NOOP")
	cl.send(fmt.Sprintf("x2 APPEND INBOX {%d}", len(testMessage)))
	if l := cl.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("got %q, want a continuation request", l)
	}
	cl.send(testMessage)
	if _, st := cl.until("x2"); !strings.HasPrefix(st, "OK [APPENDUID") {
		t.Fatalf("APPEND within the limit: %q", st)
	}
}

// TestLimitsAfterStartTLS: after STARTTLS the connection has the same
// limits, without a second greeting; commands sent with STARTTLS, before
// its OK, are dropped rather than run over TLS. Command names are ASCII:
// "ſtarttls" (U+017F) is not STARTTLS.
func TestLimitsAfterStartTLS(t *testing.T) {
	st := newTestStack(t)
	opts := st.options()
	opts.AllowInsecureAuth = false
	_, addr := st.serve(opts)
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)

	cl := dial(t, addr)
	cl.expect("BAD", "ſtarttls")
	cl.send("s1 STARTTLS\r\ns2 CREATE Pipelined")
	if l := cl.line(); !strings.HasPrefix(l, "s1 OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	tc := tls.Client(cl.c, &tls.Config{InsecureSkipVerify: true})
	must(t, tc.Handshake())
	cl.c = tc
	cl.r.Reset(tc)
	cl.send("n1 NOOP")
	if l := cl.line(); !strings.HasPrefix(l, "n1 OK") {
		t.Fatalf("first reply over TLS: %q, want n1's OK and no greeting", l)
	}
	cl.login("alice@local.example")
	if _, err := os.Stat(filepath.Join(path, ".Pipelined")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("command sent before STARTTLS's OK was run: %v", err)
	}
	cl.send("h1 SELECT {4294967295}")
	if l := cl.line(); !strings.HasPrefix(l, "h1 NO [TOOBIG]") {
		t.Fatalf("huge literal over STARTTLS: %q", l)
	}
	cl.ok("SELECT INBOX")
	// A non-synchronizing message is read as a message (LITERAL+), and
	// one over APPENDLIMIT ends the connection before it is read.
	head := "Subject: x\r\n\r\nh3 CREATE Injected\r\n"
	cl.send("h2 APPEND INBOX {5000+}\r\n" + head + strings.Repeat("x", 5000-len(head)))
	if _, reply := cl.until("h2"); !strings.HasPrefix(reply, "OK [APPENDUID") {
		t.Fatalf("APPEND with LITERAL+ over TLS: %q", reply)
	}
	cl.send(fmt.Sprintf("h4 APPEND INBOX {%d+}\r\nSubject: x\r\n\r\nh5 CREATE Injected\r\n", 50<<20+1))
	closedWithBye(t, cl, "h4")
	if _, err := os.Stat(filepath.Join(path, ".Injected")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("literal data executed as a command: %v", err)
	}
}

// TestManyLiterals: the literals of one command (APPEND's message aside)
// are bounded in total, not only one by one: beyond 64 KiB the
// connection ends.
func TestManyLiterals(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	search := func(n int) string {
		var b strings.Builder
		b.WriteString("SEARCH")
		for range n {
			fmt.Fprintf(&b, " BODY {4000+}\r\n%s", strings.Repeat("q", 4000))
		}
		return b.String()
	}
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	wantLine(t, cl.ok("%s", search(15)), "* SEARCH")
	cl.send("m1 " + search(20))
	closedWithBye(t, cl, "")
}

// TestSearchCharsetLiterals: a SEARCH in a legacy charset with its
// strings in literals is converted to UTF-8 and finds the message; an
// unknown charset is answered NO [BADCHARSET].
func TestSearchCharsetLiterals(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", "Subject: =?UTF-8?Q?K=C3=B6ln?=\r\n\r\nbody\r\n")
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	fmt.Fprint(cl.c, "g1 SEARCH CHARSET {10}\r\n")
	for _, part := range []string{"ISO-8859-1 SUBJECT {4}\r\n", "K\xf6ln\r\n"} {
		if l := cl.line(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("got %q, want a continuation request", l)
		}
		fmt.Fprint(cl.c, part)
	}
	lines, tagged := cl.until("g1")
	if !strings.HasPrefix(tagged, "OK") || !has(lines, "* SEARCH 1") || has(lines, "+ ") {
		t.Fatalf("SEARCH in ISO-8859-1: %q %q", lines, tagged)
	}
	wantLine(t, cl.ok("SEARCH CHARSET ISO-8859-1 SUBJECT \"K\xf6ln\""), "* SEARCH 1")
	cl.expect("NO [BADCHARSET", "SEARCH CHARSET X-UNKNOWN SUBJECT x")
	cl.expect("NO [TOOBIG]", "SEARCH CHARSET ISO-8859-1 SUBJECT {5000}")
	wantLine(t, cl.ok("SEARCH CHARSET UTF-8 SUBJECT \"Köln\""), "* SEARCH 1")
}

// maxLine is the limit on a command's bytes outside its literals.
const maxLine = 50 << 10

// TestSearchLinesTooLong: a SEARCH whose lines are each within maxLine
// but together beyond it is answered BAD [TOOBIG] and the connection
// closes; as is one line beyond maxLine.
func TestSearchLinesTooLong(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	half := strings.Repeat("a", 30<<10) // each line within maxLine, both beyond it
	for _, c := range []struct{ tag, cmd string }{
		{"s1", "SEARCH TEXT " + half + " TEXT {1+}\r\nb TEXT " + half},
		{"s2", "SEARCH SUBJECT " + strings.Repeat("a", maxLine+100)},
	} {
		cl := dial(t, addr)
		cl.login("alice@local.example")
		cl.ok("SELECT INBOX")
		cl.send(c.tag + " " + c.cmd)
		if rest := closedWithBye(t, cl, c.tag); !strings.Contains(rest, c.tag+" BAD [TOOBIG] Command line too long") {
			t.Fatalf("%s: got %q", c.tag, rest)
		}
	}
}

// TestMultiAppendTotal: the messages of one MULTIAPPEND count together
// against ten times APPENDLIMIT, each before it is asked for: a
// synchronizing literal over it is NO [TOOBIG] without a continuation
// request, a non-synchronizing one BAD [TOOBIG] and close; either way no
// message of the command is kept.
func TestMultiAppendTotal(t *testing.T) {
	st := newTestStack(t)
	opts := st.options()
	opts.AppendLimit = 100
	_, addr := st.serve(opts)
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)
	msg := "Subject: m\r\n\r\n" + strings.Repeat("x", 78) + "\r\n" // 96 bytes
	ten := strings.Repeat(fmt.Sprintf(" {%d+}\r\n%s", len(msg), msg), 10)
	stored := func() int {
		n := 0
		for _, sub := range []string{"new", "cur"} {
			es, err := os.ReadDir(filepath.Join(path, sub))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			n += len(es)
		}
		return n
	}
	cl := dial(t, addr)
	cl.login("alice@local.example")
	fmt.Fprintf(cl.c, "m1 APPEND INBOX%s\r\n", ten)
	if _, reply := cl.until("m1"); !strings.HasPrefix(reply, "OK [APPENDUID") {
		t.Fatalf("ten messages within the total: %q", reply)
	}
	if n := stored(); n != 10 {
		t.Fatalf("%d messages stored, want 10", n)
	}
	fmt.Fprintf(cl.c, "m2 APPEND INBOX%s {%d}\r\n", ten, len(msg))
	if lines, reply := cl.until("m2"); reply != "NO [TOOBIG] Messages of one APPEND too large together" || has(lines, "+ ") {
		t.Fatalf("eleventh message, synchronizing: %q %q", lines, reply)
	}
	wantLine(t, cl.ok("STATUS INBOX (MESSAGES)"), "MESSAGES 10")
	fmt.Fprintf(cl.c, "m3 APPEND INBOX%s {%d+}\r\n%s\r\n", ten, len(msg), msg)
	closedWithBye(t, cl, "m3")
	if n := stored(); n != 10 {
		t.Fatalf("%d messages stored after the refused MULTIAPPENDs, want 10", n)
	}
}

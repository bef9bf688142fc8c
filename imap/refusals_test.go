package imap

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/text/encoding/japanese"
)

// deepSearches are SEARCH arguments whose command line is just under
// the 50 KiB limit: nesting that would take a recursive parser
// thousands of levels deep.
func deepSearches() []string {
	const n = 50<<10 - 64
	return []string{
		strings.Repeat("(", n),
		strings.Repeat("NOT ", n/4) + "ALL",
		strings.Repeat("OR ALL ", n/7) + "ALL",
		"SUBJECT x " + strings.Repeat("(NOT ", n/5),
	}
}

// TestDeepSearchRefused: deep SEARCH nesting is answered BAD [LIMIT]
// once a mailbox is selected (before, SEARCH is refused for the state
// before its keys are read), and the connection stays usable.
func TestDeepSearchRefused(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	for _, q := range deepSearches() {
		cl.expect("BAD Log in first", "SEARCH %s", q)
		cl.ok("NOOP")
	}
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	for _, q := range deepSearches() {
		cl.expect("BAD [LIMIT]", "SEARCH %s", q)
		cl.expect("BAD [LIMIT]", "UID SEARCH RETURN (MIN) %s", q)
		cl.ok("NOOP")
	}
	// 64 levels are taken, with their literals.
	fmt.Fprintf(cl.c, "d1 SEARCH %sSUBJECT {1+}\r\nx\r\n", strings.Repeat("NOT ", 63))
	if lines, reply := cl.until("d1"); !strings.HasPrefix(reply, "OK") || !has(lines, "* SEARCH 1") {
		t.Fatalf("63 NOTs: %q %q", lines, reply)
	}
	// Past the limit with a literal: the literal's bytes are dropped.
	fmt.Fprintf(cl.c, "d2 SEARCH %sSUBJECT {15+}\r\nd3 CREATE Evil\r\n", strings.Repeat("NOT ", 70))
	if _, reply := cl.until("d2"); !strings.HasPrefix(reply, "BAD [LIMIT]") {
		t.Fatalf("deep search with a literal: %q", reply)
	}
	if lines := cl.ok(`LIST "" *`); has(lines, "Evil") {
		t.Fatalf("literal data executed as a command: %q", lines)
	}
	// A synchronizing literal after the limit is not asked for.
	fmt.Fprintf(cl.c, "d4 SEARCH %sSUBJECT {5}\r\n", strings.Repeat("NOT ", 70))
	if lines, reply := cl.until("d4"); !strings.HasPrefix(reply, "BAD [LIMIT]") || len(lines) != 0 {
		t.Fatalf("deep search with a synchronizing literal: %q %q", lines, reply)
	}
	cl.ok("NOOP")
}

// TestDeepSearchStack: 20 connections each sending 50 KiB of nesting
// do not grow the server's goroutine stacks (an unbounded recursive
// parser would take some 32 MiB per connection).
func TestDeepSearchStack(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	var before, after runtime.MemStats
	cls := make([]*client, 20)
	for i := range cls {
		cls[i] = dial(t, addr)
		cls[i].login("alice@local.example")
		cls[i].ok("SELECT INBOX")
	}
	runtime.ReadMemStats(&before)
	for _, cl := range cls {
		cl.expect("BAD [LIMIT]", "SEARCH %s", deepSearches()[0])
		cl.expect("BAD [LIMIT]", "SEARCH %s", deepSearches()[1])
	}
	runtime.ReadMemStats(&after)
	grown := int64(after.StackInuse) - int64(before.StackInuse)
	t.Logf("stacks in use: %d KiB before, %d KiB after 40 deep searches on 20 connections", before.StackInuse>>10, after.StackInuse>>10)
	if grown > 8<<20 {
		t.Fatalf("stacks grew by %d KiB", grown>>10)
	}
	for _, cl := range cls {
		cl.ok("NOOP")
	}
}

// TestSearchLegacyCharsetsOnWire: SEARCH CHARSET with strings in the
// charset named, as quoted strings and as literals, finds a Latin-1
// quoted-printable body and an ISO-2022-JP encoded Subject.
func TestSearchLegacyCharsetsOnWire(t *testing.T) {
	st := newTestStack(t)
	jis, err := japanese.ISO2022JP.NewEncoder().String("日本語の件名")
	must(t, err)
	st.deliver("alice@local.example", "INBOX",
		"Subject: plain\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nDer B=E4cker aus K=F6ln\r\n")
	st.deliver("alice@local.example", "INBOX",
		"Subject: =?ISO-2022-JP?B?"+base64.StdEncoding.EncodeToString([]byte(jis))+"?=\r\n\r\nbody\r\n")
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")

	wantLine(t, cl.ok("SEARCH CHARSET ISO-8859-1 BODY \"B\xe4cker\""), "* SEARCH 1")
	wantLine(t, cl.ok("UID SEARCH CHARSET windows-1252 TEXT \"k\xf6ln\""), "* SEARCH 1")
	fmt.Fprintf(cl.c, "l1 SEARCH CHARSET ISO-8859-1 BODY {4+}\r\nK\xf6ln\r\n")
	if lines, reply := cl.until("l1"); !strings.HasPrefix(reply, "OK") || !has(lines, "* SEARCH 1") {
		t.Fatalf("Latin-1 literal: %q %q", lines, reply)
	}
	word, err := japanese.ISO2022JP.NewEncoder().String("件名")
	must(t, err)
	fmt.Fprintf(cl.c, "l2 SEARCH CHARSET ISO-2022-JP SUBJECT {%d}\r\n", len(word))
	if l := cl.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("got %q, want a continuation request", l)
	}
	fmt.Fprintf(cl.c, "%s\r\n", word)
	if lines, reply := cl.until("l2"); !strings.HasPrefix(reply, "OK") || !has(lines, "* SEARCH 2") || has(lines, "* SEARCH 1") {
		t.Fatalf("ISO-2022-JP literal: %q %q", lines, reply)
	}
	// ISO-2022-JP's escape sequences are bytes a quoted string holds.
	wantLine(t, cl.ok("SEARCH CHARSET ISO-2022-JP SUBJECT \"%s\"", word), "* SEARCH 2")
	lines, reply := cl.cmd("SEARCH CHARSET X-MARTIAN SUBJECT x")
	if !strings.HasPrefix(reply, "NO [BADCHARSET (UTF-8 US-ASCII ISO-8859-1 ") || !strings.Contains(reply, " ISO-2022-JP ") {
		t.Fatalf("unknown charset: %q %q", lines, reply)
	}
	// A string not valid in its charset.
	cl.expect("BAD", "SEARCH CHARSET ISO-2022-JP SUBJECT \"\x1b$B\xff\"")
	cl.ok("NOOP")
}

// errBadMailboxArg is the answer to a mailbox name that is not valid
// modified UTF-7: a well-formed argument, so NO, not BAD (RFC 9051
// section 7.1).
const errBadMailboxArg = "NO [CANNOT] Invalid mailbox name: not valid modified UTF-7"

// TestBadMailboxRefused: mailbox names that are not valid modified
// UTF-7 are answered NO [CANNOT] (a LIST pattern matches nothing), with
// the rest of the command (a non-synchronizing literal) read and
// dropped; NUL in a name is BAD [CLIENTBUG].
func TestBadMailboxRefused(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)
	cl := dial(t, addr)
	cl.login("alice@local.example")
	for _, c := range []string{"SELECT &Jjo", "RENAME INBOX &AGE-", "STATUS &2D0- (MESSAGES)"} {
		cl.expect(errBadMailboxArg, "%s", c)
	}
	if lines := cl.expect("OK", `LIST "" "&APw-&APw-"`); len(lines) != 0 {
		t.Fatalf("LIST of an undecodable pattern: %q", lines)
	}
	cl.expect("BAD [CLIENTBUG]", "CREATE \"a\x00b\"")
	msg := "Subject: x\r\n\r\nz1 CREATE Injected\r\n"
	fmt.Fprintf(cl.c, "b1 APPEND &AGE- {%d+}\r\n%s\r\n", len(msg), msg)
	if _, reply := cl.until("b1"); !strings.HasPrefix(reply, errBadMailboxArg) {
		t.Fatalf("APPEND: %q", reply)
	}
	fmt.Fprintf(cl.c, "b2 APPEND &Jjo (\\Seen) {%d}\r\n", len(msg))
	if lines, reply := cl.until("b2"); !strings.HasPrefix(reply, errBadMailboxArg) || len(lines) != 0 {
		t.Fatalf("APPEND with a synchronizing literal: %q %q", lines, reply)
	}
	cl.ok("NOOP")
	// Names sent as literals are checked as quoted ones.
	for _, c := range []struct{ first, rest, want string }{
		{"SELECT {4}", "&Jjo", errBadMailboxArg},
		{"RENAME {5+}", "INBOX &AGE-", errBadMailboxArg},
		{"CREATE {4+}", "a\x00bc", "BAD [CLIENTBUG] Mailbox name holds NUL"},
		{`LIST "" {6}`, "&2D0-*", "OK"},
		{"STATUS {4}", "&Jjo (MESSAGES)", errBadMailboxArg},
		{"CREATE {7}", "Good&-1", "OK"},
		{"RENAME {7}", "Good&-1 {5}\r\nGood2", "OK"},
		{"SELECT {5}", "inbox", "OK"},
		{`LIST "" {5}`, "Good*", "OK"},
	} {
		fmt.Fprintf(cl.c, "m1 %s\r\n", c.first)
		rest := c.rest
		for {
			if !strings.HasSuffix(c.first, "+}") || rest != c.rest {
				if l := cl.line(); !strings.HasPrefix(l, "+ ") {
					t.Fatalf("%s: got %q, want a continuation request", c.first, l)
				}
			}
			part, more, _ := strings.Cut(rest, "\r\n")
			fmt.Fprintf(cl.c, "%s\r\n", part)
			if more == "" {
				break
			}
			rest = more
		}
		lines, reply := cl.until("m1")
		if !strings.HasPrefix(reply, c.want) {
			t.Fatalf("%s %q: %q %q", c.first, c.rest, lines, reply)
		}
		if c.first == `LIST "" {5}` && !has(lines, "Good2") {
			t.Fatalf("LIST: %q", lines)
		}
	}
	// APPEND's mailbox as a literal: checked before the message is
	// asked for, or read.
	fmt.Fprint(cl.c, "m2 APPEND {4}\r\n")
	if l := cl.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("APPEND: got %q, want a continuation request", l)
	}
	fmt.Fprintf(cl.c, "&Jjo (\\Seen) {%d}\r\n", len(msg))
	if lines, reply := cl.until("m2"); !strings.HasPrefix(reply, errBadMailboxArg) || len(lines) != 0 {
		t.Fatalf("APPEND with a literal name: %q %q", lines, reply)
	}
	fmt.Fprintf(cl.c, "m3 APPEND {4+}\r\n&Jjo {%d+}\r\n%s\r\n", len(msg), msg)
	if _, reply := cl.until("m3"); !strings.HasPrefix(reply, errBadMailboxArg) {
		t.Fatalf("APPEND with a literal name and LITERAL+: %q", reply)
	}
	fmt.Fprint(cl.c, "m4 APPEND {5}\r\n")
	for _, part := range []string{fmt.Sprintf("Good2 {%d}\r\n", len(msg)), msg + "\r\n"} {
		if l := cl.line(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("APPEND: got %q, want a continuation request", l)
		}
		fmt.Fprint(cl.c, part)
	}
	if _, reply := cl.until("m4"); !strings.HasPrefix(reply, "OK") {
		t.Fatalf("APPEND to a literal name: %q", reply)
	}
	wantLine(t, cl.ok("STATUS Good2 (MESSAGES)"), "MESSAGES 1")
	if _, err := os.Stat(filepath.Join(path, ".Good2")); err != nil {
		t.Fatalf("RENAME with literal names: %v", err)
	}
	if _, err := os.Stat(filepath.Join(path, ".Injected")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("literal data executed as a command: %v", err)
	}
}

// TestRefusedBeforeLiterals: a command the connection's state does not
// allow, and LOGIN before TLS, are refused as soon as their name is
// read: no continuation request invites their literals (a password in
// clear, data before login), a non-synchronizing one is read past, and
// nothing is stored. Before login such commands count as invalid ones.
func TestRefusedBeforeLiterals(t *testing.T) {
	st := newTestStack(t)
	opts := st.options()
	opts.AllowInsecureAuth = false
	_, addr := st.serve(opts)
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)
	cl := dial(t, addr)
	refused := func(tag, cmd, want string) {
		t.Helper()
		cl.send(tag + " " + cmd)
		if l := cl.line(); l != tag+" "+want {
			t.Fatalf("%s: got %q, want %q and no continuation request", cmd, l, tag+" "+want)
		}
	}
	refused("a1", "LOGIN {19}", "NO [PRIVACYREQUIRED] Use TLS before sending a password")
	refused("a2", "LOGIN alice@local.example {21}", "NO [PRIVACYREQUIRED] Use TLS before sending a password")
	refused("a3", "SELECT {5}", "BAD Log in first")
	refused("a4", "APPEND INBOX (\\Seen) {30}", "BAD Log in first")
	refused("a5", "CREATE {7+}\r\nStolen1", "BAD Log in first")
	refused("a6", "UID FETCH 1 BODY[HEADER.FIELDS ({7}", "BAD Log in first")
	cl.ok("NOOP")
	cl.startTLS()
	cl.login("alice@local.example")
	refused("b1", "LOGIN {19}", "BAD Already logged in")
	refused("b2", "SEARCH SUBJECT {5}", "BAD No mailbox selected")
	refused("b3", "UID COPY 1 {7}", "BAD No mailbox selected")
	refused("b4", "UID MOVE 1 {7+}\r\nStolen2", "BAD No mailbox selected")
	cl.ok("SELECT INBOX")
	wantLine(t, cl.ok("LIST \"\" *"), "INBOX")
	for _, name := range []string{".Stolen1", ".Stolen2"} {
		if _, err := os.Stat(filepath.Join(path, name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: %v", name, err)
		}
	}

	// Ten commands refused for the state before login end the
	// connection, as ten syntax errors do.
	cl = dial(t, addr)
	for i := range 9 {
		cl.expect("BAD Log in first", "SELECT INBOX%d", i)
	}
	cl.send("z1 SELECT INBOX")
	if rest := closedWithBye(t, cl, "z1"); !strings.Contains(rest, "Too many invalid commands") {
		t.Fatalf("tenth command before login: %q", rest)
	}
}

// TestLineTooLongInsideACommand: a line over the line limit inside a
// command, an AUTHENTICATE response or the line that ends IDLE, is
// answered as an over-long command line, BAD [TOOBIG] and BYE, and the
// bytes after the limit are never read as a command.
func TestLineTooLongInsideACommand(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)
	for _, c := range []struct {
		login bool
		cmd   string
		tail  string
	}{
		{false, "s1 AUTHENTICATE PLAIN", "x1 LOGIN alice@local.example " + testPassword},
		{true, "s1 IDLE", "x1 CREATE Smuggled"},
	} {
		cl := dial(t, addr)
		if c.login {
			cl.login("alice@local.example")
		}
		cl.send(c.cmd)
		if l := cl.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("%s: %q", c.cmd, l)
		}
		cl.send(strings.Repeat("A", 50<<10+1) + c.tail)
		if rest := closedWithBye(t, cl, "s1"); !strings.Contains(rest, "s1 BAD [TOOBIG]") || strings.Contains(rest, "x1") {
			t.Fatalf("over-long line in %s: %q", c.cmd, rest)
		}
	}
	if _, err := os.Stat(filepath.Join(path, ".Smuggled")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bytes after the limit run as a command: %v", err)
	}
}

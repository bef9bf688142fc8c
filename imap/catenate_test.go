package imap

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
)

// lit is a non-synchronizing literal of s (LITERAL+).
func lit(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) }

// stored returns the messages of a user's folder as stored on disk, in
// UID order.
func (st *testStack) stored(user, folder string) []string {
	st.t.Helper()
	local, domain, _ := strings.Cut(user, "@")
	path, err := st.maildirs.UserPath(domain, local)
	must(st.t, err)
	ctx := context.Background()
	md, err := st.maildirs.Open(ctx, path)
	must(st.t, err)
	defer md.Close()
	f, err := md.Folder(ctx, folder)
	must(st.t, err)
	snap, err := f.Snapshot(ctx)
	must(st.t, err)
	var out []string
	for _, m := range snap.Messages {
		fh, _, err := f.Open(ctx, m.UID)
		must(st.t, err)
		b, err := io.ReadAll(fh)
		fh.Close()
		must(st.t, err)
		out = append(out, string(b))
	}
	return out
}

const catSource = "From: a@example.com\r\nSubject: one\r\n\r\nHello body\r\n"

const catMultipart = "From: b@example.com\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n" +
	"--x\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--x\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--x--\r\n"

func TestCatenate(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", catSource)
	st.deliver("alice@local.example", "INBOX", catMultipart)
	st.deliver("bob@local.example", "INBOX", catSource)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), " CATENATE ", " URL-PARTIAL ")
	cl.ok("CREATE Out")
	lines := cl.ok("STATUS INBOX (UIDVALIDITY)")
	var uidv uint32
	for _, l := range lines {
		fmt.Sscanf(l, "* STATUS INBOX (UIDVALIDITY %d)", &uidv)
	}
	if uidv == 0 {
		t.Fatalf("no UIDVALIDITY in %q", lines)
	}
	_, port, _ := strings.Cut(addr, ":")
	var want []string
	good := []struct{ parts, result string }{
		{`URL "/INBOX/;UID=1/;SECTION=HEADER" TEXT ` + lit("new body\r\n"),
			"From: a@example.com\r\nSubject: one\r\n\r\nnew body\r\n"},
		{"TEXT " + lit("X: 1\r\n\r\n") + fmt.Sprintf(` URL "/inbox;UIDVALIDITY=%d/;uid=1/;section=TEXT"`, uidv),
			"X: 1\r\n\r\nHello body\r\n"},
		{`URL "/INBOX/;UID=1/;SECTION=TEXT/;PARTIAL=6.4" TEXT ` + lit("\r\n"), "body\r\n"},
		{`URL "/INBOX/;UID=1/;PARTIAL=100000.1" TEXT ` + lit("empty"), "empty"},
		{`URL "/INBOX/;UID=1"`, catSource},
		{`URL "/INBOX/;UID=2/;SECTION=2" URL "/INBOX/;UID=2/;SECTION=1.MIME"`, "second" + "Content-Type: text/plain\r\n\r\n"},
		{`URL "/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20(Subject)"`, "Subject: one\r\n\r\n"},
		{`URL "imap://alice%40local.example@127.0.0.1:` + port + `/INBOX/;UID=1/;SECTION=TEXT"`, "Hello body\r\n"},
		{"TEXT " + lit("") + " TEXT ~" + lit("a\x00b"), "a\x00b"},
	}
	for i, tc := range good {
		lines, res := cl.cmd("APPEND Out (\\Seen) CATENATE (%s)", tc.parts)
		if wantCode := fmt.Sprintf("[APPENDUID "); !strings.HasPrefix(res, "OK "+wantCode) || !strings.HasSuffix(strings.Fields(res)[3], fmt.Sprint(i+1)+"]") {
			t.Fatalf("CATENATE (%s): %q %q", tc.parts, res, lines)
		}
		want = append(want, tc.result)
	}
	bad := []string{
		`URL "/INBOX;UIDVALIDITY=12345/;UID=1/;SECTION=HEADER"`,
		`URL "/INBOX/;UID=99"`,
		`URL "/Nonexistent/;UID=1"`,
		`URL "/INBOX/;UID=1/;SECTION=5"`,
		`URL "/INBOX/;UID=1/;URLAUTH=anonymous:internal:0011"`,
		`URL "imap://bob%40local.example@127.0.0.1/INBOX/;UID=1"`,
		`URL "imap://alice%40local.example@elsewhere.example/INBOX/;UID=1"`,
		`URL "imap://alice%40local.example@127.0.0.1:1/INBOX/;UID=1"`,
		`URL "../bob/INBOX/;UID=1"`,
		`URL ";UID=1"`, // relative, and no mailbox selected
		`URL "/INBOX/;UID=1/;SECTION=HEADER" TEXT ` + lit("body\r\n") + ` URL "nonsense" TEXT ` + lit("more"),
		"TEXT " + lit("hdr: 1\r\n\r\n") + ` URL "/INBOX;UIDVALIDITY=12345/;UID=1"`,
	}
	for _, parts := range bad {
		cl.expect("NO [BADURL", "APPEND Out CATENATE (%s)", parts)
		cl.ok("NOOP")
	}
	// MULTIAPPEND: a bad URL in the second message stores neither.
	cl.expect("NO [BADURL", `APPEND Out CATENATE (URL "/INBOX/;UID=1") CATENATE (URL "/INBOX/;UID=77" TEXT %s) %s`, lit("x"), lit("third\r\n"))
	cl.expect("NO [TRYCREATE]", `APPEND Missing CATENATE (TEXT %s URL "/INBOX/;UID=1")`, lit("x"))
	cl.expect("BAD", "APPEND Out CATENATE ()")
	cl.expect("BAD", "APPEND Out CATENATE (TEXT %s FOO bar)", lit("x"))
	cl.ok("NOOP")
	// MULTIAPPEND of a CATENATE message and a plain one.
	cl.ok(`APPEND Out CATENATE (URL "/INBOX/;UID=1/;SECTION=HEADER") (\Answered) %s`, lit("New: Message\r\n\r\nbody5\r\n"))
	want = append(want, "From: a@example.com\r\nSubject: one\r\n\r\n", "New: Message\r\n\r\nbody5\r\n")
	// Relative to the selected mailbox (RFC 5092 section 7.1).
	cl.ok("EXAMINE INBOX")
	cl.ok(`APPEND Out CATENATE (URL ";UID=1/;SECTION=TEXT")`)
	cl.expect("NO [BADURL", `APPEND Out CATENATE (URL ";UID=9")`)
	want = append(want, "Hello body\r\n")

	got := st.stored("alice@local.example", "Out")
	if len(got) != len(want) {
		t.Fatalf("%d messages stored, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d is %q, want %q", i+1, got[i], want[i])
		}
	}
	if n := len(st.stored("bob@local.example", "INBOX")); n != 1 {
		t.Errorf("bob's INBOX has %d messages", n)
	}
}

// TestCatenateLimits: the parts of one message count together against
// APPENDLIMIT, each before it is read, and their number is bounded.
func TestCatenateLimits(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", catSource) // 49 bytes
	opts := st.options()
	opts.AppendLimit = 100
	_, addr := st.serve(opts)
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("CREATE Out")

	// A synchronizing TEXT literal over what is left is refused before
	// its continuation request.
	cl.send("a1 APPEND Out CATENATE (TEXT {60}")
	if l := cl.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("first literal: %q", l)
	}
	cl.send(strings.Repeat("x", 60) + " TEXT {60}")
	if l := cl.line(); !strings.HasPrefix(l, "a1 NO [TOOBIG]") {
		t.Fatalf("second literal: %q", l)
	}
	cl.ok("NOOP")
	// A URL part over what is left: NO [TOOBIG] without reading it.
	cl.expect("NO [TOOBIG]", `APPEND Out CATENATE (TEXT %s URL "/INBOX/;UID=1")`, lit(strings.Repeat("y", 60)))
	cl.ok("NOOP")
	// Exactly the limit is taken.
	cl.ok(`APPEND Out CATENATE (TEXT %s URL "/INBOX/;UID=1")`, lit(strings.Repeat("z", 51)))
	// The count starts again with each message of a MULTIAPPEND.
	cl.ok(`APPEND Out CATENATE (URL "/INBOX/;UID=1") CATENATE (URL "/INBOX/;UID=1" URL "/INBOX/;UID=1/;SECTION=HEADER")`)
	cl.expect("BAD [LIMIT]", "APPEND Out CATENATE (%s)", strings.TrimSpace(strings.Repeat(`URL "/INBOX/;UID=1/;PARTIAL=0.1" `, 257)))
	cl.ok("NOOP")
	if got := st.stored("alice@local.example", "Out"); len(got) != 3 || got[0] != strings.Repeat("z", 51)+catSource {
		t.Fatalf("stored %q", got)
	}
}

package imap

import (
	"fmt"
	"strings"
	"testing"
)

// contextMessage is message i of the CONTEXT tests: a body with "body"
// in it, and subject si.
func contextMessage(i int) string {
	return fmt.Sprintf("Subject: s%d\r\nFrom: a@example.org\r\n\r\nthe body of %d\r\n", i, i)
}

// TestSearchContextUpdate: SEARCH RETURN (UPDATE) keeps the search and
// answers the session's own changes and another session's with
// ESEARCH ADDTO and REMOVEFROM (expunged messages by the numbers the
// client knows, before their EXPUNGE); CANCELUPDATE stops it (imaptest's
// search-context-update scripts, and RFC 5267 section 4.3).
func TestSearchContextUpdate(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	for i := 1; i <= 5; i++ {
		st.deliver("alice@local.example", "INBOX", contextMessage(i))
	}
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), " CONTEXT=SEARCH")
	cl.ok("SELECT INBOX")
	lines, st1 := cl.cmd("SEARCH RETURN (UPDATE) BODY body SEEN")
	tag := fmt.Sprintf("a%d", cl.ntag)
	if !strings.HasPrefix(st1, "OK") || len(lines) != 1 || lines[0] != `* ESEARCH (TAG "`+tag+`")` {
		t.Fatalf("got %q %q", lines, st1)
	}
	esearch := `* ESEARCH (TAG "` + tag + `") `
	lines = cl.ok("STORE 1,2,4 +FLAGS.SILENT (\\Seen)")
	wantLine(t, lines, esearch+"ADDTO (0 1:2,4)")
	lines = cl.ok("STORE 1,2 -FLAGS.SILENT (\\Seen)")
	wantLine(t, lines, esearch+"REMOVEFROM (0 1:2)")
	lines = cl.ok("STORE 3:5 +FLAGS.SILENT (\\Deleted)")
	if has(lines, "ESEARCH") {
		t.Fatalf("no change to the result, yet %q", lines)
	}
	lines = cl.ok("EXPUNGE")
	// The session held the expunged messages \Recent: its new RECENT
	// count follows the expunges.
	want := []string{esearch + "REMOVEFROM (0 4)", "* 5 EXPUNGE", "* 4 EXPUNGE", "* 3 EXPUNGE", "* 2 RECENT"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("EXPUNGE:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	// Another session's APPEND of a matching message, and its STORE.
	c2 := dial(t, addr)
	c2.login("alice@local.example")
	msg := contextMessage(6)
	c2.ok("APPEND INBOX (\\Seen) {%d+}\r\n%s", len(msg), msg)
	lines = cl.ok("NOOP")
	wantLine(t, lines, "* 3 EXISTS")
	wantLine(t, lines, esearch+"ADDTO (0 3)")
	c2.ok("SELECT INBOX")
	c2.ok("STORE 1 +FLAGS (\\Seen)")
	wantLine(t, cl.ok("NOOP"), esearch+"ADDTO (0 1)")

	cl.ok("CANCELUPDATE %q", tag)
	c2.ok("STORE 2 +FLAGS (\\Seen)")
	if lines := cl.ok("NOOP"); has(lines, "ESEARCH") {
		t.Fatalf("after CANCELUPDATE: %q", lines)
	}
}

// TestSearchContextUID: a UID SEARCH's updates name UIDs; ALL with
// UPDATE returns the result first (search-context-update3).
func TestSearchContextUID(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	for i := 1; i <= 6; i++ {
		st.deliver("alice@local.example", "INBOX", contextMessage(i))
	}
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	cl.ok("STORE 1 +FLAGS (\\Deleted)")
	cl.ok("EXPUNGE")
	cl.ok("STORE 1,2 +FLAGS.SILENT (\\Seen)")
	lines := cl.ok("UID SEARCH RETURN (UPDATE ALL) OR SEEN SUBJECT s33")
	tag := fmt.Sprintf("a%d", cl.ntag)
	esearch := `* ESEARCH (TAG "` + tag + `") UID `
	wantLine(t, lines, esearch+"ALL 2:3")
	wantLine(t, cl.ok("STORE 3:5 +FLAGS.SILENT (\\Seen)"), esearch+"ADDTO (0 4:6)")
	wantLine(t, cl.ok("STORE 1:5 -FLAGS.SILENT (\\Seen)"), esearch+"REMOVEFROM (0 2:6)")
	wantLine(t, cl.ok("UID STORE 4,5 +FLAGS.SILENT (\\Seen)"), esearch+"ADDTO (0 4:5)")
	cl.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
	lines = cl.ok("EXPUNGE")
	wantLine(t, lines, "* 3 EXPUNGE")
	wantLine(t, lines, esearch+"REMOVEFROM (0 4)")
}

// TestSearchContextLimits: at most 16 searches are kept per session,
// the next is answered with NOUPDATE; SORT's are never kept; closing
// the mailbox ends them.
func TestSearchContextLimits(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	st.deliver("alice@local.example", "INBOX", contextMessage(1))
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	for range maxSearchContexts {
		if lines := cl.ok("SEARCH RETURN (UPDATE) SEEN"); has(lines, "NOUPDATE") {
			t.Fatalf("got %q", lines)
		}
	}
	wantLine(t, cl.ok("SEARCH RETURN (UPDATE) SEEN"), fmt.Sprintf(`* NO [NOUPDATE "a%d"]`, cl.ntag))
	wantLine(t, cl.ok("SORT RETURN (UPDATE COUNT) (DATE) UTF-8 ALL"), fmt.Sprintf(`* NO [NOUPDATE "a%d"]`, cl.ntag))
	lines := cl.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
	if n := strings.Count(strings.Join(lines, "\n"), "ADDTO (0 1)"); n != maxSearchContexts {
		t.Fatalf("%d updates: %q", n, lines)
	}
	cl.ok("UNSELECT")
	cl.ok("SELECT INBOX")
	if lines := cl.ok("STORE 1 -FLAGS.SILENT (\\Seen)"); has(lines, "ESEARCH") {
		t.Fatalf("after UNSELECT: %q", lines)
	}
	cl.expect("BAD", "CANCELUPDATE")
}

// TestSearchPartial: PARTIAL windows of SEARCH, UID SEARCH and SORT
// results (imaptest's search-partial), RFC 9394's ranges from the end,
// and the ranges refused.
func TestSearchPartial(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	for i := 1; i <= 5; i++ {
		st.deliver("alice@local.example", "INBOX", contextMessage(i))
	}
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	for _, c := range []struct{ cmd, want string }{
		{"SEARCH RETURN (PARTIAL 1:1) ALL", "PARTIAL (1:1 1)"},
		{"SEARCH RETURN (PARTIAL 2:4) ALL", "PARTIAL (2:4 2:4)"},
		{"SEARCH RETURN (PARTIAL 4:2) ALL", "PARTIAL (2:4 2:4)"},
		{"SEARCH RETURN (PARTIAL 1:6) ALL", "PARTIAL (1:6 1:5)"},
		{"SEARCH RETURN (PARTIAL 6:6) ALL", "PARTIAL (6:6 NIL)"},
		{"SEARCH RETURN (PARTIAL 1:3) 1:2,4:5", "PARTIAL (1:3 1:2,4)"},
		{"SEARCH RETURN (PARTIAL 2:10) 1:2,4:5", "PARTIAL (2:10 2,4:5)"},
		{"SEARCH RETURN (PARTIAL -1:-2 COUNT) ALL", "COUNT 5 PARTIAL (-1:-2 4:5)"},
		{"SEARCH RETURN (PARTIAL -3:-10) ALL", "PARTIAL (-3:-10 1:3)"},
		{"SEARCH RETURN (PARTIAL -6:-7) ALL", "PARTIAL (-6:-7 NIL)"},
		{"UID SEARCH RETURN (PARTIAL 2:2) ALL", "UID PARTIAL (2:2 2)"},
		{"SORT RETURN (PARTIAL 1:2) (REVERSE SUBJECT) UTF-8 ALL", "PARTIAL (1:2 5,4)"},
		{"UID SORT RETURN (PARTIAL -1:-2 MIN) (SUBJECT) UTF-8 ALL", "UID MIN 1 PARTIAL (-1:-2 4:5)"},
	} {
		lines := cl.ok("%s", c.cmd)
		wantLine(t, lines, fmt.Sprintf(`* ESEARCH (TAG "a%d") %s`, cl.ntag, c.want))
	}
	for _, bad := range []string{
		"SEARCH RETURN (PARTIAL 1) ALL", "SEARCH RETURN (PARTIAL 1:*) ALL", "SEARCH RETURN (PARTIAL *:1) ALL",
		"SEARCH RETURN (PARTIAL 0:3) ALL", "SEARCH RETURN (PARTIAL -1:3) ALL", "SEARCH RETURN (PARTIAL 1:3 ALL) ALL",
		"SEARCH RETURN (PARTIAL 1:4294967296) ALL",
	} {
		cl.expect("BAD", "%s", bad)
	}
}

// TestSortContextUpdate: SORT RETURN (UPDATE) is kept too (CONTEXT=SORT):
// ADDTO gives each new match its position in sort order, REMOVEFROM
// the messages gone; UID SORT's name UIDs.
func TestSortContextUpdate(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	for i := 1; i <= 5; i++ {
		st.deliver("alice@local.example", "INBOX", contextMessage(i))
	}
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), " CONTEXT=SORT")
	cl.ok("SELECT INBOX")
	cl.ok("STORE 2,4 +FLAGS.SILENT (\\Seen)")
	lines := cl.ok("SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 SEEN")
	esort := fmt.Sprintf(`* ESEARCH (TAG "a%d") `, cl.ntag)
	wantLine(t, lines, esort+"ALL 2,4")
	lines = cl.ok("UID SORT RETURN (UPDATE) (REVERSE SUBJECT) UTF-8 SEEN")
	usort := fmt.Sprintf(`* ESEARCH (TAG "a%d") UID `, cl.ntag)
	if has(lines, "NOUPDATE") {
		t.Fatalf("got %q", lines)
	}
	lines = cl.ok("STORE 3,5 +FLAGS.SILENT (\\Seen)")
	wantLine(t, lines, esort+"ADDTO (2 3 4 5)") // s2 s3 s4 s5
	wantLine(t, lines, usort+"ADDTO (1 5 3 3)") // s5 s4 s3 s2
	lines = cl.ok("STORE 2,4 -FLAGS.SILENT (\\Seen)")
	wantLine(t, lines, esort+"REMOVEFROM (0 2,4)")
	wantLine(t, lines, usort+"REMOVEFROM (0 2,4)")

	c2 := dial(t, addr)
	c2.login("alice@local.example")
	msg := "Subject: s0\r\n\r\nfirst by subject\r\n"
	c2.ok("APPEND INBOX (\\Seen) {%d+}\r\n%s", len(msg), msg)
	lines = cl.ok("NOOP")
	wantLine(t, lines, "* 6 EXISTS")
	wantLine(t, lines, esort+"ADDTO (1 6)")
	wantLine(t, lines, usort+"ADDTO (3 6)") // s5 s3 s0
	cl.ok("STORE 6 +FLAGS.SILENT (\\Deleted)")
	lines = cl.ok("EXPUNGE")
	wantLine(t, lines, esort+"REMOVEFROM (0 6)")
	wantLine(t, lines, usort+"REMOVEFROM (0 6)")
	wantLine(t, lines, "* 6 EXPUNGE")
}

package imap

import (
	"fmt"
	"strings"
	"testing"
)

func TestUIDOnly(t *testing.T) {
	st := newTestStack(t)
	for _, s := range []string{"one", "two", "three"} {
		st.deliver("alice@local.example", "INBOX", "Subject: "+s+"\r\n\r\n"+s+"\r\n")
	}
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), " UIDONLY ")
	wantLine(t, cl.ok("ENABLE UIDONLY"), "* ENABLED UIDONLY")
	lines := cl.ok("SELECT INBOX")
	wantLine(t, lines, "* 3 EXISTS")
	if has(lines, "[UNSEEN") {
		t.Fatalf("SELECT sent a sequence number: %q", lines)
	}
	other := dial(t, addr)
	other.login("alice@local.example")
	other.ok("SELECT INBOX")

	for _, c := range []string{
		"FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "SEARCH ALL", "COPY 1 INBOX", "MOVE 1 INBOX",
		"SORT (DATE) UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL", "REPLACE 1 INBOX " + lit("x"),
		"UID SEARCH 1:2", "UID SEARCH NOT 1", "UID SEARCH OR SEEN (2 DRAFT)", "UID SORT (DATE) UTF-8 1",
		"UID THREAD REFS UTF-8 OR 1 2",
	} {
		cl.expect("BAD [UIDREQUIRED]", "%s", c)
	}
	if got := withoutRecent(cl.ok("NOOP")); len(got) != 0 {
		t.Fatalf("NOOP after refusals: %q", got)
	}
	wantLine(t, cl.ok("UID SEARCH ALL"), "* SEARCH 1 2 3")

	want := func(got []string, lines ...string) {
		t.Helper()
		got = withoutRecent(got)
		if strings.Join(got, "\n") != strings.Join(lines, "\n") {
			t.Fatalf("got %q, want %q", got, lines)
		}
	}
	want(cl.ok("UID FETCH 1:* FLAGS"), "* 1 UIDFETCH (FLAGS (\\Recent))", "* 2 UIDFETCH (FLAGS (\\Recent))", "* 3 UIDFETCH (FLAGS (\\Recent))")
	want(cl.ok("UID FETCH 2 (UID RFC822.SIZE)"), "* 2 UIDFETCH (UID 2 RFC822.SIZE 21)")
	want(cl.ok("UID STORE 2 +FLAGS (\\Deleted)"), "* 2 UIDFETCH (FLAGS (\\Deleted \\Recent))")
	// Another session's flag change and expunge.
	other.ok("UID STORE 3 +FLAGS (\\Seen)")
	want(cl.ok("NOOP"), "* 3 UIDFETCH (FLAGS (\\Seen \\Recent))")
	want(cl.ok("UID EXPUNGE 2"), "* VANISHED 2")
	other.ok("UID STORE 1 +FLAGS (\\Deleted)")
	other.ok("EXPUNGE")
	want(cl.ok("NOOP"), "* VANISHED 1")
	// With CONDSTORE the modseq comes too, still without UID.
	lines = withoutRecent(cl.ok("UID FETCH 3 (FLAGS) (CHANGEDSINCE 1)"))
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "* OK [HIGHESTMODSEQ ") ||
		!strings.HasPrefix(lines[1], "* 3 UIDFETCH (FLAGS (\\Seen \\Recent) MODSEQ (") {
		t.Fatalf("CHANGEDSINCE: %q", lines)
	}
	cl.ok("ENABLE QRESYNC")
	lines = cl.ok("STATUS INBOX (UIDVALIDITY)")
	var uidv uint32
	for _, l := range lines {
		fmt.Sscanf(l, "* STATUS INBOX (UIDVALIDITY %d)", &uidv)
	}
	cl.expect("BAD [UIDREQUIRED]", "SELECT INBOX (QRESYNC (%d 1 1:3 (1 3)))", uidv)
	cl.ok("SELECT INBOX (QRESYNC (%d 1 1:3))", uidv)
}

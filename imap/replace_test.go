package imap

import (
	"strings"
	"testing"
)

func TestReplace(t *testing.T) {
	st := newTestStack(t)
	for _, s := range []string{"one", "two", "three"} {
		st.deliver("alice@local.example", "INBOX", "Subject: "+s+"\r\n\r\n"+s+"\r\n")
	}
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), " REPLACE ")
	cl.ok("CREATE Notes")
	other := dial(t, addr)
	other.login("alice@local.example")
	other.ok("SELECT INBOX")
	cl.expect("BAD", "REPLACE 1 INBOX %s", lit("x")) // no mailbox selected
	lines := cl.ok("SELECT INBOX")
	wantLine(t, lines, "UIDVALIDITY")

	// REPLACE 2 in the same mailbox: APPENDUID untagged, then the new
	// message and the EXPUNGE of the old.
	lines, res := cl.cmd("REPLACE 2 INBOX (\\Draft) %s", lit("Subject: two, edited\r\n\r\nnew\r\n"))
	lines = withoutRecent(lines)
	if !strings.HasPrefix(res, "OK") || len(lines) != 3 ||
		!strings.HasPrefix(lines[0], "* OK [APPENDUID ") || strings.Fields(lines[0])[4] != "4]" ||
		lines[1] != "* 2 EXPUNGE" || lines[2] != "* 3 EXISTS" {
		t.Fatalf("REPLACE: %q %q", lines, res)
	}
	// The other session learns the same at its next command.
	lines = withoutRecent(other.ok("NOOP"))
	if len(lines) != 2 || lines[0] != "* 2 EXPUNGE" || lines[1] != "* 3 EXISTS" {
		t.Fatalf("other session: %q", lines)
	}
	// UID REPLACE into another mailbox, after ENABLE QRESYNC: VANISHED.
	cl.ok("ENABLE QRESYNC")
	lines, res = cl.cmd("UID REPLACE 1 Notes %s", lit("Subject: one, moved\r\n\r\n"))
	if !strings.HasPrefix(res, "OK") || len(lines) != 2 || !strings.HasPrefix(lines[0], "* OK [APPENDUID ") ||
		!strings.HasSuffix(lines[0], " 1] Replacement Message ID") || lines[1] != "* VANISHED 1" {
		t.Fatalf("UID REPLACE: %q %q", lines, res)
	}
	// CATENATE in REPLACE.
	cl.ok(`UID REPLACE 4 INBOX CATENATE (URL "/Notes/;UID=1/;SECTION=HEADER" TEXT %s)`, lit("cat\r\n"))

	// Refusals leave both mailboxes as they were.
	cl.expect("NO [TRYCREATE]", "UID REPLACE 3 Missing %s", lit("x"))
	cl.expect("NO [NONEXISTENT]", "UID REPLACE 99 INBOX %s", lit("x"))
	cl.expect("BAD", "REPLACE 9 INBOX %s", lit("x"))
	cl.expect("BAD", "REPLACE 1:2 INBOX %s", lit("x"))
	cl.ok("UID SEARCH RETURN (SAVE) ALL")
	cl.expect("BAD", "UID REPLACE $ INBOX %s", lit("x"))
	cl.expect("BAD", "REPLACE 1 INBOX %s %s", lit("x"), lit("y"))
	cl.expect("NO [BADURL", `UID REPLACE 3 INBOX CATENATE (URL "/INBOX/;UID=77")`)
	cl.ok("NOOP")
	cl.ok("EXAMINE INBOX")
	cl.expect("NO [READ-ONLY]", "UID REPLACE 3 INBOX %s", lit("x"))

	inbox := st.stored("alice@local.example", "INBOX")
	want := []string{"Subject: three\r\n\r\nthree\r\n", "Subject: one, moved\r\n\r\ncat\r\n"}
	if strings.Join(inbox, "|") != strings.Join(want, "|") {
		t.Fatalf("INBOX holds %q, want %q", inbox, want)
	}
	if drafts := st.stored("alice@local.example", "Notes"); len(drafts) != 1 || drafts[0] != "Subject: one, moved\r\n\r\n" {
		t.Fatalf("Notes holds %q", drafts)
	}
}

// withoutRecent drops IMAP4rev1's RECENT responses.
func withoutRecent(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !strings.HasSuffix(l, " RECENT") {
			out = append(out, l)
		}
	}
	return out
}

package imap

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestQResync is a client coming back to a mailbox (RFC 7162 section
// 3.2): with its UIDVALIDITY and HIGHESTMODSEQ it learns, in SELECT's
// answer alone, which of its messages were expunged (VANISHED
// (EARLIER)) and which changed (FETCH with MODSEQ); while selected it is
// told of expunges as VANISHED.
func TestQResync(t *testing.T) {
	st := newTestStack(t)
	for range 10 {
		st.deliver("alice@local.example", "INBOX", testMessage)
	}
	_, addr := st.serve(st.options())
	a := dial(t, addr)
	a.login("alice@local.example")
	wantLine(t, a.ok("CAPABILITY"), "QRESYNC")
	a.expect("BAD [CLIENTBUG]", "SELECT INBOX (QRESYNC (1 1))")
	wantLine(t, a.ok("ENABLE QRESYNC"), "* ENABLED QRESYNC")
	lines := a.ok("SELECT INBOX")
	validity := modSeqOf(t, lines, "UIDVALIDITY")
	base := modSeqOf(t, lines, "HIGHESTMODSEQ")
	a.ok("LOGOUT")

	b := dial(t, addr)
	b.login("alice@local.example")
	b.ok("SELECT INBOX")
	b.ok(`UID STORE 2 +FLAGS.SILENT (\Flagged)`)
	b.ok(`UID STORE 3:4 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")

	a = dial(t, addr)
	a.login("alice@local.example")
	a.ok("ENABLE QRESYNC")
	lines = a.ok("SELECT INBOX (QRESYNC (%d %d 1:10))", validity, base)
	wantLine(t, lines, "* VANISHED (EARLIER) 3:4")
	wantLine(t, lines, "* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (")
	wantLine(t, lines, "* 8 EXISTS")
	if has(lines, "UID 1 ") || has(lines, "UID 5 ") {
		t.Fatalf("unchanged messages sent: %q", lines)
	}
	// The same from UID FETCH's VANISHED modifier.
	lines = a.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", base)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "* VANISHED (EARLIER) 3:4") || !has(lines, "UID 2 ") {
		t.Fatalf("UID FETCH VANISHED: %q", lines)
	}
	a.expect("BAD", "FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", base)
	// Another UIDVALIDITY: nothing is resynchronized.
	lines = a.ok("SELECT INBOX (QRESYNC (%d %d))", validity+1, base)
	wantLine(t, lines, "[CLOSED]")
	if has(lines, "VANISHED") || has(lines, "FETCH") {
		t.Fatalf("QRESYNC with a stale UIDVALIDITY: %q", lines)
	}
	// While selected, an expunge is VANISHED, not EXPUNGE.
	b.ok(`UID STORE 6 +FLAGS.SILENT (\Deleted)`)
	b.ok("UID EXPUNGE 6")
	lines = a.ok("NOOP")
	wantLine(t, lines, "* VANISHED 6")
	if has(lines, "EXPUNGE") {
		t.Fatalf("EXPUNGE sent to a QRESYNC client: %q", lines)
	}
	wantLine(t, a.ok("FETCH 4 UID"), "* 4 FETCH (UID 7 MODSEQ (")
}

// TestAbsentUIDs: what VANISHED (EARLIER) reports once the index has
// dropped expunges that old: every UID of the client's set not in the
// mailbox.
func TestAbsentUIDs(t *testing.T) {
	present := []uint32{2, 3, 7, 10}
	for _, c := range []struct {
		known   imap.UIDSet
		uidNext uint32
		want    string
	}{
		{nil, 11, "1,4:6,8:9"},
		{nil, 8, "1,4:6"},
		{imap.UIDSet{{Start: 1, Stop: 0}}, 12, "1,4:6,8:9,11"},
		{imap.UIDSet{{Start: 3, Stop: 8}}, 11, "4:6,8"},
		{imap.UIDSet{{Start: 2, Stop: 3}, {Start: 7, Stop: 7}}, 11, ""},
		{nil, 1, ""},
	} {
		if got := absentUIDs(present, c.known, c.uidNext).String(); got != c.want {
			t.Errorf("known %v, UIDNEXT %d: %q, want %q", c.known, c.uidNext, got, c.want)
		}
	}
}

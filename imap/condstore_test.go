package imap

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// modSeqOf finds "name <n>" or "name (<n>)" in lines.
func modSeqOf(t *testing.T, lines []string, name string) uint64 {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(name) + ` \(?(\d+)`)
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			n, err := strconv.ParseUint(m[1], 10, 64)
			must(t, err)
			return n
		}
	}
	t.Fatalf("no %s in %q", name, lines)
	return 0
}

// TestCondStoreSync is the two-way sync of doveadm sync and Thunderbird
// on the wire (RFC 7162): a client remembers HIGHESTMODSEQ, the server
// side changes flags, the client asks only for what changed since, and
// its own conditional STORE of stale flags is refused with MODIFIED
// rather than reverting the server's change.
func TestCondStoreSync(t *testing.T) {
	st := newTestStack(t)
	for range 10 {
		st.deliver("alice@local.example", "INBOX", testMessage)
	}
	_, addr := st.serve(st.options())
	syncer := dial(t, addr)
	syncer.login("alice@local.example")
	wantLine(t, syncer.ok("CAPABILITY"), "CONDSTORE")
	lines := syncer.ok("SELECT INBOX (CONDSTORE)")
	base := modSeqOf(t, lines, "HIGHESTMODSEQ")
	all := syncer.ok("UID FETCH 1:* (FLAGS)")
	if len(all) != 10 || !has(all, "MODSEQ (") {
		t.Fatalf("full FETCH after CONDSTORE: %q", all)
	}

	// The server side: \Flagged on UIDs 3 and 7, \Seen on 5.
	other := dial(t, addr)
	other.login("alice@local.example")
	other.ok("SELECT INBOX")
	other.ok(`UID STORE 3,7 +FLAGS.SILENT (\Flagged)`)
	other.ok(`UID STORE 5 +FLAGS.SILENT (\Seen)`)
	wantLine(t, other.ok("STATUS INBOX (HIGHESTMODSEQ)"), "HIGHESTMODSEQ")

	// Only the three changed messages come back, with their modseqs.
	changed := syncer.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", base)
	var got []string
	for _, l := range changed {
		if strings.Contains(l, " FETCH (UID ") && !strings.HasPrefix(l, "* OK") {
			got = append(got, l)
		}
	}
	if len(got) != 3 || !has(got, "UID 3 ", `\Flagged`) || !has(got, "UID 7 ", `\Flagged`) || !has(got, "UID 5 ", `\Seen`) {
		t.Fatalf("CHANGEDSINCE %d: %q", base, changed)
	}
	if m := modSeqOf(t, got, "MODSEQ"); m <= base {
		t.Fatalf("modseq %d not above %d", m, base)
	}

	other.ok("ENABLE CONDSTORE")
	// The client's stale view: it sets \Answered on 3 (changed on the
	// server) and 4 (not changed), conditionally on its old modseq.
	lines, reply := syncer.cmd(`UID STORE 3:4 (UNCHANGEDSINCE %d) FLAGS (\Answered)`, base)
	if reply != "OK [MODIFIED 3] Conditional STORE failed for some messages" {
		t.Fatalf("conditional STORE: %q %q", lines, reply)
	}
	wantLine(t, lines, "UID 4 ", `FLAGS (\Answered \Recent)`, "MODSEQ (")
	if l := syncer.ok("UID FETCH 3 FLAGS"); !has(l, `FLAGS (\Flagged`) || has(l, `\Answered`) {
		t.Fatalf("the server's change to 3 was overwritten: %q", l)
	}
	// SEARCH MODSEQ finds what changed since, with the highest modseq.
	wantLine(t, syncer.ok("UID SEARCH MODSEQ %d", base+1), "* SEARCH 3 4 5 7 (MODSEQ ")
	// The other session, which has enabled CONDSTORE, hears of 4's
	// change with its modseq.
	wantLine(t, other.ok("NOOP"), `FETCH (UID 4 FLAGS (\Answered) MODSEQ (`)
}

// TestCondStoreEnabledWhileSelected: a CONDSTORE-enabling command with a
// mailbox selected is answered with its HIGHESTMODSEQ, and from then on
// FETCH responses carry UID and MODSEQ (RFC 7162 section 3.1); ESEARCH
// with MIN alone gives the modseq of that message.
func TestCondStoreEnabledWhileSelected(t *testing.T) {
	st := newTestStack(t)
	for range 3 {
		st.deliver("alice@local.example", "INBOX", testMessage)
	}
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	cl.ok(`STORE 3 +FLAGS (\Flagged)`)
	lines := cl.ok("FETCH 1 (FLAGS MODSEQ)")
	wantLine(t, lines, "* OK [HIGHESTMODSEQ ")
	wantLine(t, lines, "* 1 FETCH (UID 1 FLAGS (", "MODSEQ (")
	wantLine(t, cl.ok("FETCH 2 FLAGS"), "* 2 FETCH (UID 2 FLAGS (", "MODSEQ (")
	first := modSeqOf(t, cl.ok("FETCH 1 MODSEQ"), "MODSEQ")
	lines = cl.ok("SEARCH RETURN (MIN) MODSEQ 1")
	if got := modSeqOf(t, lines, "MODSEQ"); got != first {
		t.Fatalf("ESEARCH MIN's MODSEQ %d, want message 1's %d: %q", got, first, lines)
	}
}

package imap

import (
	"testing"
)

// TestRecent follows RFC 3501 section 2.3.2 as imaptest's "select",
// "copy" and "search-flags" do: appended and copied messages are
// \Recent; EXAMINE and STATUS leave them so; the first read-write
// SELECT takes them, and no later session sees them \Recent; a session
// that has the mailbox selected takes the messages it is first told of.
func TestRecent(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	a := dial(t, addr)
	a.login("alice@local.example")
	a.ok("CREATE box")
	for range 2 {
		a.ok("APPEND box {%d+}\r\n%s", len(testMessage), testMessage)
	}
	lines := a.ok("EXAMINE box")
	wantLine(t, lines, "* 2 RECENT")
	lines = a.ok("FETCH 1:2 FLAGS")
	wantLine(t, lines, `* 1 FETCH (FLAGS (\Recent))`)
	wantLine(t, lines, `* 2 FETCH (FLAGS (\Recent))`)
	a.ok("CLOSE")
	wantLine(t, a.ok("STATUS box (MESSAGES RECENT)"), `* STATUS "box" (MESSAGES 2 RECENT 2)`)
	wantLine(t, a.ok("SELECT box"), "* 2 RECENT")
	if got := a.ok("SEARCH RECENT"); !has(got, "* SEARCH 1 2") {
		t.Fatalf("SEARCH RECENT: %q", got)
	}
	wantLine(t, a.ok("SEARCH NEW"), "* SEARCH 1 2")

	// A second session selecting now gets none.
	b := dial(t, addr)
	b.login("alice@local.example")
	wantLine(t, b.ok("STATUS box (RECENT)"), `* STATUS "box" (RECENT 0)`)
	wantLine(t, b.ok("SELECT box"), "* 0 RECENT")
	wantLine(t, b.ok("FETCH 1 FLAGS"), `* 1 FETCH (FLAGS ())`)
	wantLine(t, b.ok("SEARCH OLD"), "* SEARCH 1 2")

	// A copy into another session's mailbox: that session is told
	// first and takes it; one into its own, the copying session.
	a.ok("CREATE box2")
	wantLine(t, b.ok("SELECT box2"), "* 0 RECENT")
	a.ok("COPY 1 box2")
	lines = b.ok("NOOP")
	wantLine(t, lines, "* 1 EXISTS")
	wantLine(t, lines, "* 1 RECENT")
	wantLine(t, b.ok("FETCH 1 FLAGS"), `* 1 FETCH (FLAGS (\Recent))`)
	lines = a.ok("COPY 2 box")
	wantLine(t, lines, "* 3 EXISTS")
	wantLine(t, lines, "* 3 RECENT")
	wantLine(t, a.ok("FETCH 3 FLAGS"), `* 3 FETCH (FLAGS (\Recent))`)
	a.ok("CLOSE")
	wantLine(t, a.ok("SELECT box2"), "* 0 RECENT")
}

package imap

import (
	"fmt"
	"strings"
	"testing"
)

// TestRecent follows RFC 3501 section 2.3.2 as imaptest's "select",
// "copy" and "search-flags" do: appended and copied messages are
// \Recent; EXAMINE and STATUS leave them so; the first read-write
// SELECT takes them, and no later session sees them \Recent; a session
// that has the mailbox selected takes the messages it is first told of.
// TestRecentAfterExpunge: when messages a session holds \Recent are
// expunged, an IMAP4rev1 client is told its new RECENT count after the
// EXPUNGE responses.
func TestRecentAfterExpunge(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	a := dial(t, addr)
	a.login("alice@local.example")
	a.ok("CREATE box")
	for range 3 {
		a.ok("APPEND box {%d+}\r\n%s", len(testMessage), testMessage)
	}
	wantLine(t, a.ok("SELECT box"), "* 3 RECENT")
	b := dial(t, addr)
	b.login("alice@local.example")
	wantLine(t, b.ok("SELECT box"), "* 0 RECENT")
	b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
	b.ok("EXPUNGE")
	lines := a.ok("NOOP")
	wantLine(t, lines, "* 2 EXPUNGE")
	wantLine(t, lines, "* 2 RECENT")
}

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

// TestEnvelopeGroups follows imaptest's "fetch-envelope": group syntax
// gives RFC 3501's group markers, a comment names a bare address, a
// source route is the address's adl.
func TestEnvelopeGroups(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", "Date: Thu, 15 Feb 2007 01:02:03 +0200\r\n"+
		"From: user@domain (Real Name)\r\n"+
		"To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\n"+
		"Cc: group:;, group2: (foo) ;\r\n"+
		"Bcc: <@route:user@domain>\r\n\r\nbody\r\n")
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("EXAMINE INBOX")
	wantLine(t, cl.ok("FETCH 1 ENVELOPE"), `* 1 FETCH (ENVELOPE ("Thu, 15 Feb 2007 01:02:03 +0200" NIL `+
		`(("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) `+
		`((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL)) `+
		`((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)) `+
		`((NIL "@route" "user" "domain")) NIL NIL))`)
}

// TestEnvelopeSourceRoutes: RFC 3501's address structure carries an
// obsolete source route (RFC 5322 section 4.4) as its adl, "@a,@b" as
// Dovecot writes it, in ENVELOPE and in a message/rfc822 part's
// BODYSTRUCTURE, inside a group, beside an encoded-word display name,
// and beside a UTF-8 one (a literal before UTF8=ACCEPT, a quoted string
// after).
func TestEnvelopeSourceRoutes(t *testing.T) {
	st := newTestStack(t)
	header := "Date: Thu, 15 Feb 2007 01:02:03 +0200\r\n" +
		"From: =?UTF-8?Q?J=C3=B6rg?= <@a.example, @b.example:user@c.example>\r\n" +
		"Sender: <@relay.example:s@d.example>\r\n" +
		"To: team: Ann <@r1.example:ann@x.example>, bob@y.example;\r\n" +
		"Cc: Jörg <@r.example:j@x.example>\r\n"
	st.deliver("alice@local.example", "INBOX", header+"\r\nbody\r\n")
	st.deliver("alice@local.example", "INBOX", "Content-Type: message/rfc822\r\n\r\n"+header+"\r\nbody\r\n")
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("EXAMINE INBOX")
	env := func(cc string) string {
		return `("Thu, 15 Feb 2007 01:02:03 +0200" NIL ` +
			`(("Jörg" "@a.example,@b.example" "user" "c.example")) ((NIL "@relay.example" "s" "d.example")) ` +
			`(("Jörg" "@a.example,@b.example" "user" "c.example")) ` +
			`((NIL NIL "team" NIL)("Ann" "@r1.example" "ann" "x.example")(NIL NIL "bob" "y.example")(NIL NIL NIL NIL)) ` +
			`((` + cc + ` "@r.example" "j" "x.example")) NIL NIL NIL)`
	}
	// Before UTF8=ACCEPT the 8-bit names are literals.
	lit := strings.ReplaceAll(env(`"Jörg"`), `"Jörg"`, "{5}\r\nJörg")
	got := strings.Join(cl.ok("FETCH 1 ENVELOPE"), "\r\n")
	if want := "* 1 FETCH (ENVELOPE " + lit + ")"; got != want {
		t.Fatalf("FETCH ENVELOPE:\n got %q\nwant %q", got, want)
	}
	cl.ok("ENABLE UTF8=ACCEPT")
	wantLine(t, cl.ok("FETCH 1 ENVELOPE"), "* 1 FETCH (ENVELOPE "+env(`"Jörg"`)+")")
	wantLine(t, cl.ok("FETCH 2 BODYSTRUCTURE"), "* 2 FETCH (BODYSTRUCTURE (\"message\" \"rfc822\" NIL NIL NIL \"7bit\" ", env(`"Jörg"`))
}

// TestSearchAddressWithComments follows imaptest's "search-addresses":
// SEARCH FROM finds an address written with comments inside it.
func TestSearchAddressWithComments(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", "From: <user-from (comment)@ (comment) domain.org>\r\nTo: <user-to@domain.org>\r\n\r\nbody3\r\n")
	st.deliver("alice@local.example", "INBOX", "From: other@domain.org\r\n\r\nbody\r\n")
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("EXAMINE INBOX")
	wantLine(t, cl.ok("SEARCH FROM user-from@domain.org"), "* SEARCH 1")
	if got := cl.ok("SEARCH FROM comment"); !has(got, "* SEARCH 1") {
		t.Fatalf("the field's own text no longer matches: %q", got)
	}
	if got := cl.ok("SEARCH FROM user-to@domain.org"); !has(got, "* SEARCH") || has(got, "* SEARCH 1") {
		t.Fatalf("SEARCH FROM matched the To field: %q", got)
	}
}

// TestLsubUnsubscribedParent follows imaptest's "subscribe" and RFC
// 3501 section 6.3.9: "%" returns an unsubscribed parent of a
// subscribed mailbox, flagged \Noselect, and "*" the mailbox itself.
func TestLsubUnsubscribedParent(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	for _, n := range []string{"box", "box.test", "box.test2", "box.test2.test", "box.test3.test3"} {
		cl.ok("CREATE %s", n)
	}
	for _, n := range []string{"box.test", "box.test2.test", "box.test3.test3"} {
		cl.ok("SUBSCRIBE %s", n)
	}
	lines := cl.ok(`LSUB "" box.%%`)
	wantLine(t, lines, `LSUB (`, `"box.test"`)
	wantLine(t, lines, `LSUB (\Noselect) "." "box.test2"`)
	wantLine(t, lines, `LSUB (\Noselect) "." "box.test3"`)
	if len(lines) != 3 {
		t.Fatalf(`LSUB "" box.%%: %q`, lines)
	}
	lines = cl.ok(`LSUB "" *test`)
	if len(lines) != 2 || !has(lines, `"box.test"`) || !has(lines, `"box.test2.test"`) {
		t.Fatalf(`LSUB "" *test: %q`, lines)
	}
	cl.ok("UNSUBSCRIBE box.test3.test3")
	if lines := cl.ok(`LSUB "" box.%%`); has(lines, "box.test3") {
		t.Fatalf("unsubscribed child still gives its parent: %q", lines)
	}
}

// TestListExtendedSubscribed follows imaptest's "listext": a subscribed
// mailbox that does not exist is \NonExistent alone (it implies
// \Noselect), and RECURSIVEMATCH gives CHILDINFO only to a parent whose
// subscribed child the patterns do not return themselves.
func TestListExtendedSubscribed(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("CREATE box.test2.test1")
	cl.ok("SUBSCRIBE box.test2.test1")
	cl.ok("SUBSCRIBE box.gone")
	wantLine(t, cl.ok(`LIST (SUBSCRIBED) "" box.*`), `LIST (\NonExistent \HasNoChildren \Subscribed) "." "box.gone"`)
	wantLine(t, cl.ok(`LSUB "" box.*`), `LSUB (\Noselect \HasNoChildren) "." "box.gone"`)
	wantLine(t, cl.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" (box.test2)`), `"box.test2" ("CHILDINFO" ("SUBSCRIBED"))`)
	lines := cl.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" (box.test2 box.test2.test1)`)
	if has(lines, "CHILDINFO") || !has(lines, `"box.test2.test1"`) {
		t.Fatalf("RECURSIVEMATCH with the child matched: %q", lines)
	}
}

// TestNewKeywordAnnounced: a keyword the client has not been sent in
// FLAGS comes in FLAGS (and PERMANENTFLAGS) before the first FETCH that
// shows it, to the session that stored it and to another one, as
// imaptest's "copy" and "search-flags" check.
func TestNewKeywordAnnounced(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	_, addr := st.serve(st.options())
	a := dial(t, addr)
	a.login("alice@local.example")
	a.ok("SELECT INBOX")
	b := dial(t, addr)
	b.login("alice@local.example")
	b.ok("EXAMINE INBOX")

	lines := a.ok("STORE 1 +FLAGS ($Hello)")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "* FLAGS (") || !strings.Contains(lines[0], "$Hello") ||
		!strings.Contains(lines[1], "PERMANENTFLAGS (") || !strings.Contains(lines[1], "$Hello") ||
		!strings.HasPrefix(lines[2], "* 1 FETCH (FLAGS (") {
		t.Fatalf("STORE of a new keyword: %q", lines)
	}
	if lines := a.ok("STORE 1 +FLAGS ($Hello)"); has(lines, "* FLAGS") {
		t.Fatalf("FLAGS sent again: %q", lines)
	}
	lines = b.ok("NOOP")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "* FLAGS (") || !strings.Contains(lines[0], "$Hello") ||
		!strings.Contains(lines[1], "$Hello") {
		t.Fatalf("the other session's NOOP: %q", lines)
	}
}

// TestFlagChangeDuringFetchNotLost: a flag change another session makes
// while this one answers FETCH FLAGS reaches this client (in that FETCH
// or a later untagged FETCH), as imaptest's checkpoints check: after a
// NOOP every session's view of the flags is the mailbox's.
func TestFlagChangeDuringFetchNotLost(t *testing.T) {
	st := newTestStack(t)
	for range 20 {
		st.deliver("alice@local.example", "INBOX", testMessage, `\Seen`)
	}
	_, addr := st.serve(st.options())
	reader := dial(t, addr)
	reader.login("alice@local.example")
	reader.ok("SELECT INBOX")
	writer := dial(t, addr)
	writer.login("alice@local.example")
	writer.ok("SELECT INBOX")

	view := map[string]string{} // sequence number to the flags last sent
	record := func(lines []string) {
		for _, l := range lines {
			seq, rest, ok := strings.Cut(strings.TrimPrefix(l, "* "), " FETCH (")
			if !ok {
				continue
			}
			if _, fl, ok := strings.Cut(rest, "FLAGS ("); ok {
				fl, _, _ = strings.Cut(fl, ")")
				view[seq] = strings.TrimSpace(strings.ReplaceAll(fl, `\Recent`, ""))
			}
		}
	}
	// Rounds: the writer sets one flag alone on every message, another
	// each round, while the reader fetches flags; after a NOOP the
	// reader must have been sent that flag for each.
	for round := range 60 {
		kw := []string{`\Flagged`, `\Answered`, `\Draft`}[round%3]
		done := make(chan struct{})
		go func() {
			defer close(done)
			fmt.Fprintf(writer.c, "w%d STORE 1:20 FLAGS.SILENT (%s)\r\n", round, kw)
		}()
		for range 3 {
			record(reader.ok("FETCH 1:20 FLAGS"))
		}
		<-done
		writer.until(fmt.Sprintf("w%d", round))
		record(reader.ok("NOOP"))
		for seq := 1; seq <= 20; seq++ {
			if got := view[fmt.Sprint(seq)]; got != kw {
				t.Fatalf("round %d, message %d: the reader was last sent (%s), the mailbox has (%s)", round, seq, got, kw)
			}
		}
	}
}

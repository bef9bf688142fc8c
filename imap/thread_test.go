package imap

import (
	"fmt"
	"testing"
)

// TestThread: THREAD (RFC 5256) by ORDEREDSUBJECT, REFERENCES (replies
// under their parents through References and In-Reply-To, a missing
// parent joining its replies) and REFS (threads by latest message).
func TestThread(t *testing.T) {
	st := newTestStack(t)
	msg := func(id, refs, subject string, day int) string {
		h := fmt.Sprintf("Message-ID: <%s@x.example>\r\nSubject: %s\r\nDate: %02d Mar 2026 10:00:00 +0000\r\n", id, subject, day)
		if refs != "" {
			h += refs + "\r\n"
		}
		return h + "\r\nbody\r\n"
	}
	for _, m := range []string{
		msg("a", "", "Plan", 1),
		msg("b", "In-Reply-To: <a@x.example>", "Re: Plan", 2),
		msg("c", "", "Other", 3),
		msg("d", "References: <a@x.example> <b@x.example>", "Re: Plan", 4),
		msg("e", "References: <gone@x.example>", "Re: Lost", 5),
		msg("f", "References: <gone@x.example>", "Re: Lost", 6),
	} {
		st.deliver("alice@local.example", "INBOX", m)
	}
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "THREAD=REFS")
	cl.ok("SELECT INBOX")
	for _, c := range []struct{ q, want string }{
		{"THREAD REFERENCES UTF-8 ALL", "* THREAD (1 2 4)(3)((5)(6))"},
		{"THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD (1 (2)(4))(3)(5 6)"},
		{"THREAD REFS UTF-8 ALL", "* THREAD (3)(1 2 4)((5)(6))"},
		{"UID THREAD REFERENCES UTF-8 NOT 3", "* THREAD (1 2 4)((5)(6))"},
		{"THREAD REFERENCES UTF-8 SUBJECT nothing", "* THREAD"},
	} {
		if lines := cl.ok("%s", c.q); len(lines) != 1 || lines[0] != c.want {
			t.Errorf("%s: %q, want %q", c.q, lines, c.want)
		}
	}
	cl.expect("BAD", "THREAD FANCY UTF-8 ALL")
}

// TestThreadReferencesSubjectsAndLoops: REFERENCES' step 1C (a message's
// own References override a parent another message guessed, even when
// they would make a loop and link nothing) and step 5 (threads of one
// base subject joined under the original, or under an empty node when
// neither is a reply), RFC 5256 section 3.
func TestThreadReferencesSubjectsAndLoops(t *testing.T) {
	st := newTestStack(t)
	msg := func(id, refs, subject string, day int) string {
		h := fmt.Sprintf("Message-ID: <%s@x.example>\r\nSubject: %s\r\nDate: %02d Mar 2026 10:00:00 +0000\r\n", id, subject, day)
		if refs != "" {
			h += "References: " + refs + "\r\n"
		}
		return h + "\r\nbody\r\n"
	}
	for _, m := range []string{
		msg("a", "", "loop", 3),                            // 1
		msg("b", "<a@x.example> <c@x.example>", "loop", 1), // 2: guesses a -> c -> b
		msg("c", "<b@x.example>", "loop", 2),               // 3: b -> c would loop
		msg("d", "", "Topic", 4),                           // 4
		msg("e", "<gone@x.example>", "Re: topic", 5),       // 5: joins 4 by subject
		msg("f", "", "Twice", 6),                           // 6
		msg("g", "", "twice", 7),                           // 7: neither a reply
	} {
		st.deliver("alice@local.example", "INBOX", m)
	}
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	// Threads 1 and 2-3 share the subject "loop", neither a reply: an
	// empty node joins them, dated by its first child (3, day 2).
	want := "* THREAD ((3 2)(1))(4 5)((6)(7))"
	if lines := cl.ok("THREAD REFERENCES UTF-8 ALL"); len(lines) != 1 || lines[0] != want {
		t.Errorf("THREAD REFERENCES: %q, want %q", lines, want)
	}
}

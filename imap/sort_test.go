package imap

import (
	"fmt"
	"testing"
)

// sortMessage is a message with the fields SORT compares.
func sortMessage(from, to, subject, date string, body int) string {
	return fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n\r\n%0*d\r\n", from, to, subject, date, body, 0)
}

// TestSort: SORT and UID SORT (RFC 5256) by each key, REVERSE, a search
// program, SORT=DISPLAY's keys and ESORT's RETURN.
func TestSort(t *testing.T) {
	st := newTestStack(t)
	for _, m := range []string{
		sortMessage(`"Zed" <amy@x.example>`, "carl@x.example", "Re: Budget", "Tue, 03 Mar 2026 10:00:00 +0000", 300),
		sortMessage(`"Bob" <bob@x.example>`, "anna@x.example", "[list] Agenda", "Mon, 02 Mar 2026 10:00:00 +0000", 100),
		sortMessage(`carl@x.example`, "bert@x.example", "Fwd: Re: budget (fwd)", "Sun, 01 Mar 2026 23:00:00 -0500", 200),
	} {
		st.deliver("alice@local.example", "INBOX", m)
	}
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), "SORT", "SORT=DISPLAY", "ESORT")
	cl.ok("SELECT INBOX")
	for _, c := range []struct{ q, want string }{
		{"SORT (ARRIVAL) UTF-8 ALL", "* SORT 1 2 3"},
		{"SORT (DATE) UTF-8 ALL", "* SORT 3 2 1"}, // 3 is 04:00 on 2 March UTC
		{"SORT (REVERSE DATE) UTF-8 ALL", "* SORT 1 2 3"},
		{"SORT (SIZE) UTF-8 ALL", "* SORT 2 3 1"},
		{"SORT (SUBJECT) UTF-8 ALL", "* SORT 2 1 3"}, // agenda, budget, budget
		{"SORT (FROM) UTF-8 ALL", "* SORT 1 2 3"},    // amy, bob, carl
		{"SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 2 3 1"},
		{"SORT (TO REVERSE SIZE) UTF-8 ALL", "* SORT 2 3 1"},
		{"SORT (SUBJECT REVERSE ARRIVAL) UTF-8 ALL", "* SORT 2 3 1"},
		{"SORT (SIZE) UTF-8 NOT FROM bob", "* SORT 3 1"},
		{"UID SORT (REVERSE SIZE) US-ASCII ALL", "* SORT 1 3 2"},
		{"SORT RETURN (MIN MAX COUNT) (SIZE) UTF-8 ALL", `* ESEARCH (TAG "a1") MIN 2 MAX 1 COUNT 3`},
		{"UID SORT RETURN (ALL) (DATE) UTF-8 ALL", `* ESEARCH (TAG "a1") UID ALL 3,2,1`},
		{"SORT RETURN (ALL) (ARRIVAL) UTF-8 ALL", `* ESEARCH (TAG "a1") ALL 1:3`},
		{"SORT RETURN (ALL) (SUBJECT) UTF-8 ALL", `* ESEARCH (TAG "a1") ALL 2,1,3`},
	} {
		cl.ntag = 0
		lines := cl.ok("%s", c.q)
		if len(lines) != 1 || lines[0] != c.want {
			t.Errorf("%s: %q, want %q", c.q, lines, c.want)
		}
	}
	cl.expect("BAD", "SORT () UTF-8 ALL")
	cl.expect("NO [BADCHARSET", "SORT (DATE) X-NONE ALL")
}

// TestSortBaseSubjectAndAddressKeys: the base subject of RFC 5256
// section 2.1 (blobs before and inside leaders, nested "[fwd: ...]"
// wrappers, "(fwd)" trailers, a lone blob kept, encoded words), strings
// compared by i;ascii-casemap ("_" after "[" after letters), a group
// sorted by its name and a display name decoded (RFC 5957).
func TestSortBaseSubjectAndAddressKeys(t *testing.T) {
	st := newTestStack(t)
	for _, m := range []struct{ from, to, subject string }{
		{"b@c.d", "z: aa@aa.example, bb@bb.example;", "_"},                                                 // 1
		{"=?iso-8859-1?q?foo_aar?= <e@f.g>", "foo bar <a@b.c>", "[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)"}, // 2
		{"d", "a: xx@xx.example;", "[xyz]"},                                                                // 3
		{"foo bar <a@b.c>", "b@c.d", "re: [fwd: [fwd: re: [fwd: babylon]]]"},                               // 4
		{"=?iso-8859-1?q?foo_car?= <f@g.h>", "empty:;", "=?us-ascii?b?UmU6IGM=?="},                         // 5
		{"user2@x.example (foo)", "d", "Ad: Re: x"},                                                        // 6
	} {
		st.deliver("alice@local.example", "INBOX", sortMessage(m.from, m.to, m.subject, "Mon, 02 Mar 2026 10:00:00 +0000", 1))
	}
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	for _, c := range []struct{ q, want string }{
		// ad: re: x, b, babylon, c, [xyz], _
		{"SORT (SUBJECT) UTF-8 ALL", "* SORT 6 2 4 5 3 1"},
		// b@c.d, d, foo (a comment names it), foo aar, foo bar, foo car
		{"SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 1 3 6 2 4 5"},
		// a (group), b@c.d, d, empty (group), foo bar, z (group)
		{"SORT (DISPLAYTO) UTF-8 ALL", "* SORT 3 4 6 5 2 1"},
		// a, a (group; equal keys keep mailbox order), b, d, empty, z:
		// mailboxes, groups by name
		{"SORT (TO) UTF-8 ALL", "* SORT 2 3 4 6 5 1"},
	} {
		if lines := cl.ok("%s", c.q); len(lines) != 1 || lines[0] != c.want {
			t.Errorf("%s: %q, want %q", c.q, lines, c.want)
		}
	}
}

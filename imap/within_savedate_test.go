package imap

import (
	"strings"
	"testing"
	"time"
)

// TestWithinAndSaveDate appends one message with an INTERNALDATE of
// 2020 and one dated now, then checks WITHIN's YOUNGER and OLDER (RFC
// 5032), FETCH SAVEDATE and the SAVED* search keys (RFC 8514) on the
// wire.
func TestWithinAndSaveDate(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), " WITHIN", " SAVEDATE")
	msg := []byte(testMessage)
	if _, reply := cl.cmdWithLiteral(`APPEND INBOX "01-Jan-2020 00:00:00 +0000" `, msg, ""); !strings.HasPrefix(reply, "OK") {
		t.Fatalf("APPEND old: %q", reply)
	}
	if _, reply := cl.cmdWithLiteral(`APPEND INBOX `, msg, ""); !strings.HasPrefix(reply, "OK") {
		t.Fatalf("APPEND new: %q", reply)
	}
	before := time.Now().UTC()
	cl.ok("SELECT INBOX")

	today := before.Format("2-Jan-2006")
	tomorrow := before.AddDate(0, 0, 1).Format("2-Jan-2006")
	for _, c := range []struct{ query, want string }{
		{"YOUNGER 3600", "* SEARCH 2"},
		{"OLDER 3600", "* SEARCH 1"},
		{"NOT YOUNGER 3600", "* SEARCH 1"},
		{"OLDER 3600 YOUNGER 3600", "* SEARCH"},
		{"OR OLDER 3600 YOUNGER 3600", "* SEARCH 1 2"},
		// INTERNALDATE's BEFORE still compares dates, next to WITHIN.
		{"YOUNGER 3600 BEFORE 1-Jan-2021", "* SEARCH"},
		{"OLDER 3600 BEFORE 1-Jan-2021", "* SEARCH 1"},
		// Both were saved today, whatever their INTERNALDATE.
		{"SAVEDON " + today, "* SEARCH 1 2"},
		{"SAVEDSINCE " + today, "* SEARCH 1 2"},
		{"SAVEDBEFORE " + today, "* SEARCH"},
		{"SAVEDSINCE " + tomorrow, "* SEARCH"},
		{"SAVEDBEFORE " + tomorrow + " BEFORE 1-Jan-2021", "* SEARCH 1"},
		{"SAVEDATESUPPORTED", "* SEARCH 1 2"},
		{"NOT SAVEDATESUPPORTED", "* SEARCH"},
	} {
		lines := cl.ok("SEARCH %s", c.query)
		if len(lines) != 1 || lines[0] != c.want {
			t.Errorf("SEARCH %s: %q, want %q", c.query, lines, c.want)
		}
	}
	if _, reply := cl.cmd("SEARCH YOUNGER x"); !strings.HasPrefix(reply, "BAD") {
		t.Errorf("SEARCH YOUNGER x: %q, want BAD", reply)
	}

	// SAVEDATE is the append's time, not the INTERNALDATE of 2020.
	lines := cl.ok("FETCH 1 (SAVEDATE INTERNALDATE)")
	if len(lines) != 1 {
		t.Fatalf("FETCH SAVEDATE: %q", lines)
	}
	_, rest, ok := strings.Cut(lines[0], `SAVEDATE "`)
	if !ok {
		t.Fatalf("no SAVEDATE in %q", lines[0])
	}
	saved, err := time.Parse("_2-Jan-2006 15:04:05 -0700", rest[:strings.IndexByte(rest, '"')])
	if err != nil {
		t.Fatal(err)
	}
	if d := before.Sub(saved); d < 0 || d > time.Minute {
		t.Errorf("SAVEDATE %v, appended just before %v", saved, before)
	}
	wantLine(t, lines, `INTERNALDATE "01-Jan-2020 00:00:00 +0000"`)
}

package imap

import (
	"strings"
	"testing"
)

func nestOK(q string) bool {
	var s searchNest
	return s.feed([]byte(q + "\r\n"))
}

func TestSearchNest(t *testing.T) {
	r := strings.Repeat
	for _, c := range []struct {
		query string
		ok    bool
	}{
		{"ALL", true},
		{r("NOT ", 64) + "ALL", true},
		{r("NOT ", 65) + "ALL", false},
		{r("NOT ", 12000) + "ALL", false},
		{r("OR SEEN ", 64) + "ALL", true},
		{r("OR SEEN ", 65) + "ALL", false},
		{r("OR ", 65) + r("ALL ", 66), false},
		{r("(", 64) + "ALL" + r(")", 64), true},
		{r("(", 65) + "ALL" + r(")", 65), false},
		{r("(", 10000) + "ALL" + r(")", 10000), false},
		{r("NOT (", 32) + "ALL" + r(")", 32), true},
		{r("NOT (", 33) + "ALL" + r(")", 33), false},
		// Siblings do not nest.
		{r("NOT SEEN ", 1000), true},
		{r("OR (NOT SEEN) (NOT DELETED) ", 1000), true},
		{r("(FROM a) ", 1000), true},
		{r("OR FROM a FROM b ", 1000), true},
		// Arguments are not keys.
		{r("SUBJECT OR ", 1000), true},
		{r("HEADER NOT OR ", 1000), true},
		{r("BODY NOT ", 1000) + r("NOT ", 60) + "ALL", true},
		{r("UID 1:* ", 1000), true},
		{`SUBJECT "` + r("NOT (", 1000) + `"`, true},
		{`SUBJECT "a \" NOT (((" ` + r("NOT ", 64) + "ALL", true},
		{`SUBJECT "a \" NOT (((" ` + r("NOT ", 65) + "ALL", false},
		{"BODY {5}\r\n" + r("NOT ", 64) + "ALL", true},
		// RETURN's options and CHARSET's name are no keys.
		{"RETURN (MIN MAX SAVE) CHARSET UTF-8 " + r("NOT ", 64) + "ALL", true},
		{"RETURN (" + r("(", 100) + r(")", 100) + ") " + r("NOT ", 64) + "ALL", true},
		{"return (min) charset \"utf-8\" " + r("not ", 65) + "all", false},
		// A whole command line, tag and all.
		{"a1 UID SEARCH " + r("NOT ", 64) + "ALL", true},
		{"a1 UID SEARCH " + r("NOT ", 65) + "ALL", false},
		// Nesting closes again.
		{r("NOT (NOT (", 16) + "ALL" + r("))", 16) + " " + r("NOT (NOT (", 16) + "ALL" + r("))", 16), true},
		{r("OR ", 40) + r("SEEN ", 41) + r("OR ", 40) + r("SEEN ", 41), true},
		// Malformed input ends, whatever the count.
		{r(")", 1000) + r("NOT ", 64) + "ALL", true},
		{r("(NOT ", 32) + r(")", 32) + r("NOT ", 64) + "ALL", true},
	} {
		if got := nestOK(c.query); got != c.ok {
			t.Errorf("%.60q (%d bytes): %v, want %v", c.query, len(c.query), got, c.ok)
		}
		// Fed a byte at a time: the same verdict.
		var s searchNest
		got := true
		for i := 0; i < len(c.query) && got; i++ {
			got = s.feed([]byte{c.query[i]})
		}
		if got && !s.feed([]byte("\r\n")) {
			got = false
		}
		if got != c.ok {
			t.Errorf("%.60q byte by byte: %v, want %v", c.query, got, c.ok)
		}
	}
}

// TestSearchNestAgreesWithSearch sends NOT and OR nestings around the
// limit and checks that the session's answer (BAD [LIMIT] past
// maxSearchNesting) is the one searchNest predicts. (Parentheses count
// for searchNest only: imapserver recurses on them, but folds them
// away in the criteria Search sees.)
func TestSearchNestAgreesWithSearch(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("EXAMINE INBOX")
	r := strings.Repeat
	for _, q := range []string{
		r("NOT ", 63) + "ALL",
		r("NOT ", 64) + "ALL",
		r("NOT ", 65) + "ALL",
		r("OR SEEN ", 64) + "ALL",
		r("OR SEEN ", 65) + "ALL",
		r("OR ", 64) + r("ALL ", 64) + "ALL",
		r("OR ", 65) + r("ALL ", 65) + "ALL",
		r("OR NOT SEEN ", 32) + "ALL",
		r("OR NOT SEEN ", 33) + "ALL",
		r("OR SEEN NOT ", 32) + "ALL",
		r("OR SEEN NOT ", 33) + "ALL",
		r("NOT SEEN ", 200),
		r("SUBJECT OR ", 200),
	} {
		_, reply := cl.cmd("SEARCH %s", q)
		server := !strings.HasPrefix(reply, "BAD [LIMIT]")
		if server && !strings.HasPrefix(reply, "OK") {
			t.Fatalf("SEARCH %.50s...: %q", q, reply)
		}
		if scan := nestOK(q); scan != server {
			t.Errorf("SEARCH %.50s... (%d bytes): searchNest %v, server %q", q, len(q), scan, reply)
		}
	}
}

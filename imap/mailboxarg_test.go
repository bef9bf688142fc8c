package imap

import (
	"strconv"
	"strings"
	"testing"
)

func TestValidMUTF7(t *testing.T) {
	for _, c := range []struct {
		s  string
		ok bool
	}{
		{"INBOX", true},
		{"Entw&APw-rfe", true},
		{"a&-b", true},
		{"&-", true},
		{"&-&-", true},
		{"&ZeVnLIqe-", true},          // 日本語
		{"&2D3eAA-", true},            // U+1F600, a surrogate pair
		{"Entwürfe", true},            // raw UTF-8
		{"&AAA-", true},               // NUL encoded: the store refuses it
		{"&APw-&-x", true},            // a run, then "&-"
		{"&Jjo", false},               // unterminated
		{"&ZeVnLIqe", false},          // unterminated
		{"&AGE-", false},              // "a" encoded
		{"&APw-&APw-", false},         // two runs in a row
		{"&A-", false},                // six bits
		{"&AP-", false},               // twelve bits
		{"&APw=-", false},             // padding
		{"&2D0-", false},              // lone high surrogate
		{"&3gA-", false},              // lone low surrogate
		{"&2D3YPQ-", false},           // two high surrogates
		{"a\x01b", false},             // control
		{"a\x7fb", false},             // DEL
		{"a\x00b", false},             // NUL
		{"a\tb", false},               // tab
		{"\xff", false},               // not UTF-8
		{"&AP\x01w-", false},          // control in a run
		{"&APw\r-", false},            // CR in a run
		{"&AP\u00fcw-", false},        // UTF-8 in a run
		{"..", true}, {"~root", true}, // for the store to refuse
	} {
		if got := validMUTF7(c.s); got != c.ok {
			t.Errorf("validMUTF7(%q) = %v, want %v", c.s, got, c.ok)
		}
	}
}

// TestBadMailboxArgAgreesWithServer sends command lines with good and
// bad names: the lines badMailboxArg singles out are answered
// BAD [CLIENTBUG] by the guard, and no line reaches imapserver to be
// answered NO [SERVERBUG].
func TestBadMailboxArgAgreesWithServer(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	names := []string{
		"Good", "inbox", `"Two words"`, `"&ZeVnLIqe-"`, "a&-b", `"x\"y"`, `".."`, `"~root"`,
		"&Jjo", "&AGE-", `"&APw-&APw-"`, `"a\x01b"`, `"a\x00b"`, `"&2D0-"`, "&A-", `"&Jjo-"`,
		`"a\\b"`, `"&Jjo\\"`,
	}
	var lines []string
	for _, n := range names {
		for _, f := range []string{
			"CREATE %s", "DELETE %s", "RENAME %s Other", "RENAME Other %s", "SUBSCRIBE %s",
			"UNSUBSCRIBE %s", "STATUS %s (MESSAGES)", "SELECT %s", "EXAMINE %s",
			"COPY 1 %s", "UID MOVE 9 %s",
			`LIST "" %s`, `LIST %s ""`, `LIST (SUBSCRIBED) "" (%s "*")`, `LIST "" (* %s)`, `LSUB "" %s`,
			`LIST "" %s RETURN (CHILDREN)`,
		} {
			lines = append(lines, strings.Replace(f, "%s", n, 1))
		}
	}
	lines = append(lines,
		`LIST "" (&Jjo`, // unterminated list: a syntax error either way
		"APPEND &Jjo {5}", "APPEND Good {5}", `APPEND "&AGE-" (\Seen) {5}`,
		"CREATE {5}", "RENAME Good {4}",
		"NOOP &Jjo", "FETCH 1 &Jjo", "SEARCH SUBJECT &Jjo",
	)
	var nbad, ngood int
	for i, l := range lines {
		if strings.HasPrefix(l, "COPY") || strings.HasPrefix(l, "UID MOVE") {
			cl.ok("SELECT INBOX")
		}
		bad := badMailboxArg([]byte("t" + strconv.Itoa(i) + " " + l))
		var reply string
		if strings.HasSuffix(l, "}") {
			// Never send the literal: imapserver answers, or asks for it
			// and then the line is abandoned by closing the connection.
			reply = literalReply(t, addr, l)
		} else {
			_, reply = cl.cmd("%s", l)
		}
		if strings.HasPrefix(reply, "NO [SERVERBUG]") {
			t.Errorf("%q: %q", l, reply)
		}
		server := strings.HasPrefix(reply, "BAD [CLIENTBUG] "+errBadMailboxArgText)
		if bad != server {
			t.Errorf("%q: badMailboxArg %v, server %q", l, bad, reply)
		}
		if server {
			nbad++
		} else {
			ngood++
		}
	}
	if nbad < 100 || ngood < 100 {
		t.Fatalf("%d lines refused, %d taken: the table lost its cases", nbad, ngood)
	}
	t.Logf("%d lines refused, %d taken", nbad, ngood)
}

// literalReply sends a line ending in a literal header on a connection
// of its own and returns the tagged reply, or "+" when the server asks
// for the literal.
func literalReply(t *testing.T, addr, line string) string {
	t.Helper()
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.send("L " + line)
	for {
		l := cl.line()
		if strings.HasPrefix(l, "+") {
			cl.c.Close()
			return "+"
		}
		if r, ok := strings.CutPrefix(l, "L "); ok {
			cl.c.Close()
			return r
		}
	}
}

func TestBadMailboxArgLines(t *testing.T) {
	for _, c := range []struct {
		line string
		bad  bool
	}{
		{"a CREATE &Jjo\r\n", true},
		{"a create &Jjo", true},
		{"a UID COPY 1:* &AGE-", true},
		{"a UID FETCH 1:* &AGE-", false},
		{"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"*\" &Jjo)", true},
		{"a LIST (SUBSCRIBED) \"\" (\"*\" \"%\") RETURN (STATUS (MESSAGES))", false},
		{"a LIST \"&AGE-\" *", true},
		{"a RENAME INBOX \"&APw-&APw-\"", true},
		{"a RENAME {5}", false},
		{"a APPEND INBOX (\\Seen) {5}", false},
		{"a APPEND \"a\\\"&Jjo\" {5}", true},
		{"a SELECT inbox", false},
		{"a SELECT \"unterminated", false},
		{"", false},
		{"a", false},
		{"a LIST", false},
	} {
		if got := badMailboxArg([]byte(c.line)); got != c.bad {
			t.Errorf("badMailboxArg(%q) = %v, want %v", c.line, got, c.bad)
		}
	}
}

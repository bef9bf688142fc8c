package main

import (
	"strings"
	"testing"
)

// TestQAFirstRunPasswordAndRestart follows the quick start over the
// implicit-TLS ports: the first run prints a generated password that
// logs in through submissions, IMAPS and POP3S; SIGTERM exits 0; the
// second run on the same data prints no password and still serves the
// message with the same UID and POP3 UIDL.
func TestQAFirstRunPasswordAndRestart(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	dir := t.TempDir()
	cfg := qaConfig(t, dir, "")

	s := qaStart(t, bin, cfg)
	if len(s.password) < 12 {
		t.Fatalf("first run printed no usable password (%q)", s.password)
	}
	const user = "postmaster@localhost"
	qaSubmit(t, s.addrs["submissions"], user, s.password, user, user,
		"From: <postmaster@localhost>\nTo: <postmaster@localhost>\nSubject: first light\n\nkept across restarts\n")

	read := func(s *qaServer) (uidLine, uidl string) {
		t.Helper()
		c := qaDial(t, s.addrs["imaps"], true)
		c.line()
		if _, done := c.imap("LOGIN " + user + " " + s.password); !strings.HasPrefix(done, "OK") {
			t.Fatalf("IMAPS LOGIN: %s", done)
		}
		if un, done := c.imap("SELECT INBOX"); !strings.HasPrefix(done, "OK") || !strings.Contains(strings.Join(un, "\n"), "* 1 EXISTS") {
			t.Fatalf("SELECT INBOX: %s\n%s", done, strings.Join(un, "\n"))
		}
		un, done := c.imap("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
		if !strings.HasPrefix(done, "OK") || !strings.Contains(strings.Join(un, "\n"), "Subject: first light") {
			t.Fatalf("FETCH: %s\n%s", done, strings.Join(un, "\n"))
		}
		uidLine = un[0]
		c.imap("LOGOUT")

		p := qaDial(t, s.addrs["pop3s"], true)
		p.line()
		if l := p.pop("USER " + user); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3S USER: %s", l)
		}
		if l := p.pop("PASS " + s.password); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3S PASS: %s", l)
		}
		if l := p.pop("UIDL 1"); !strings.HasPrefix(l, "+OK 1 ") {
			t.Fatalf("POP3S UIDL: %s", l)
		} else {
			uidl = l
		}
		p.pop("QUIT")
		return uidLine, uidl
	}
	uid1, uidl1 := read(s)
	if err := s.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}

	s2 := qaStart(t, bin, cfg)
	if s2.password != "" {
		t.Fatalf("second run printed a new password %q", s2.password)
	}
	s2.password = s.password
	uid2, uidl2 := read(s2)
	if uid1 != uid2 || uidl1 != uidl2 {
		t.Errorf("message identity changed across restart: %q %q → %q %q", uid1, uidl1, uid2, uidl2)
	}
	if err := s2.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

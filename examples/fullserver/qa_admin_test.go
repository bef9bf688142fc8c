package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQAAdminChangesApplyAtOnce runs admin commands next to the running
// binary: each change is in force as soon as the command returns, with no
// SIGHUP and no wait for the directory cache.
func TestQAAdminChangesApplyAtOnce(t *testing.T) {
	bin := qaBinary(t)
	dir := t.TempDir()
	s := qaStart(t, bin, qaConfig(t, dir, ""))
	s.admin(t, "", "domain", "add", "now.test")
	s.admin(t, "first-secret-1\n", "user", "add", "ann@now.test")

	login := func(pass string) string {
		t.Helper()
		c := qaDial(t, s.addrs["imaps"], true)
		c.line()
		_, done := c.imap(`LOGIN "ann@now.test" "` + pass + `"`)
		c.imap("LOGOUT")
		return done
	}
	// The first login puts the user in the server's directory cache.
	if done := login("first-secret-1"); !strings.HasPrefix(done, "OK") {
		t.Fatalf("login with the first password: %s", done)
	}
	s.admin(t, "second-secret-2\n", "user", "passwd", "ann@now.test")
	if done := login("second-secret-2"); !strings.HasPrefix(done, "OK") {
		t.Fatalf("login with the new password right after passwd: %s", done)
	}
	if done := login("first-secret-1"); !strings.HasPrefix(done, "NO") {
		t.Fatalf("login with the old password right after passwd: %s", done)
	}
	s.admin(t, "", "user", "disable", "ann@now.test")
	if done := login("second-secret-2"); !strings.HasPrefix(done, "NO") {
		t.Fatalf("login right after disable: %s", done)
	}
	s.admin(t, "", "user", "enable", "ann@now.test")
	if done := login("second-secret-2"); !strings.HasPrefix(done, "OK") {
		t.Fatalf("login right after enable: %s", done)
	}

	// An alias added while the server runs takes mail at once.
	c := qaSMTP(t, s.addrs["mx"])
	c.dialog([2]string{"EHLO client.test", "250"}, [2]string{"MAIL FROM:<x@remote.test>", "250"},
		[2]string{"RCPT TO:<sales@now.test>", "550"})
	s.admin(t, "", "alias", "add", "sales@now.test", "ann@now.test")
	c.dialog([2]string{"RCPT TO:<sales@now.test>", "250"}, [2]string{"QUIT", "221"})

	// A DKIM key made while the server runs signs the next message.
	s.admin(t, "", "dkim", "keygen", "now.test")
	qaSubmit(t, s.addrs["submissions"], "ann@now.test", "second-secret-2", "ann@now.test", "ann@now.test",
		"From: <ann@now.test>\nTo: <ann@now.test>\nSubject: signed at once\n\nbody\n")
	newDir := filepath.Join(dir, "data", "mail", "now.test", "ann", "Maildir", "new")
	es, err := os.ReadDir(newDir)
	if err != nil || len(es) != 1 {
		t.Fatalf("delivered messages in %s: %v %v", newDir, es, err)
	}
	if raw := qaRead(t, filepath.Join(newDir, es[0].Name())); !strings.Contains(string(raw), "DKIM-Signature:") ||
		!strings.Contains(string(raw), "d=now.test") {
		t.Fatalf("message submitted right after dkim keygen is not signed:\n%s", raw)
	}

	// A quota set while the server runs refuses the next message over it.
	s.admin(t, "", "user", "quota", "ann@now.test", "100", "0")
	out := s.admin(t, "", "user", "quota", "ann@now.test")
	if !strings.Contains(out, "limit: 100 bytes, 0 messages (0: no limit) (from directory)") || !strings.Contains(out, "maildirsize: 100 bytes") {
		t.Fatalf("user quota:\n%s", out)
	}
	c = qaSMTP(t, s.addrs["mx"])
	c.dialog([2]string{"EHLO client.test", "250"}, [2]string{"MAIL FROM:<x@remote.test>", "250"},
		[2]string{"RCPT TO:<ann@now.test>", "552"}, [2]string{"QUIT", "221"})
	if err := s.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQABarePostmaster sends to RCPT TO:<postmaster> (no domain, which
// RFC 5321 4.5.1 says every server must accept) through the MX and finds
// the message in the Maildir that postmaster@postmaster_domain's alias
// names.
func TestQABarePostmaster(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	dir := t.TempDir()
	s := qaStart(t, bin, qaConfig(t, dir, `postmaster_domain = "pm.test"`))
	s.admin(t, "", "domain", "add", "pm.test")
	s.admin(t, "pw-of-admin\n", "user", "add", "admin@pm.test")
	s.admin(t, "", "alias", "add", "postmaster@pm.test", "admin@pm.test")

	c := qaSMTP(t, s.addrs["mx"])
	c.smtp("EHLO client.test")
	if r := c.smtp("MAIL FROM:<someone@elsewhere.test>"); !strings.HasPrefix(r, "250") {
		t.Fatalf("MAIL: %q", r)
	}
	if r := c.smtp("RCPT TO:<Postmaster>"); !strings.HasPrefix(r, "250") {
		t.Fatalf("RCPT TO:<Postmaster>: %q, want 250", r)
	}
	if r := c.smtp("DATA"); !strings.HasPrefix(r, "354") {
		t.Fatalf("DATA: %q", r)
	}
	if r := c.smtp("Subject: abuse report\r\n\r\nbare postmaster works\r\n."); !strings.HasPrefix(r, "250") {
		t.Fatalf("end of data: %q", r)
	}
	c.smtp("QUIT")

	newDir := filepath.Join(dir, "data", "mail", "pm.test", "admin", "Maildir", "new")
	files, err := os.ReadDir(newDir)
	if err != nil || len(files) != 1 {
		t.Fatalf("admin's new/: %v, %v; want one message", files, err)
	}
	b, err := os.ReadFile(filepath.Join(newDir, files[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "bare postmaster works") || !strings.Contains(string(b), "Delivered-To: admin@pm.test") {
		t.Errorf("delivered message:\n%s", b)
	}
}

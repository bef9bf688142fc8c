package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// limits.max_folders and limits.max_folder_depth reach the built
// server's Maildirs: CREATE past them is NO [LIMIT] and makes nothing.
func TestIMAPFolderLimitKeys(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	dir := t.TempDir()
	// The five special folders of the first login count: one more fits.
	s := qaStart(t, bin, qaConfig(t, dir, "[limits]\nmax_folders = 6\nmax_folder_depth = 3\n"))
	s.admin(t, "", "domain", "add", "b.test")
	s.admin(t, "pw-of-u\n", "user", "add", "-force", "u@b.test")
	c := qaDial(t, s.addrs["imaps"], true)
	c.line()
	for _, step := range []struct{ cmd, done string }{
		{"LOGIN u@b.test pw-of-u", "OK"},
		{"CREATE a.b.c.d", "NO [LIMIT] Mailbox hierarchy too deep"},
		{"CREATE a.b.c", "OK"},
		{"CREATE x", "NO [LIMIT] Too many mailboxes"},
	} {
		if lines, done := c.imap(step.cmd); !strings.HasPrefix(done, step.done) {
			t.Fatalf("%s: %q (untagged %q), want %q", step.cmd, done, lines, step.done)
		}
	}
	md := filepath.Join(dir, "data", "mail", "b.test", "u", "Maildir")
	for _, name := range []string{".a.b.c.d", ".x"} {
		if _, err := os.Stat(filepath.Join(md, name)); err == nil {
			t.Fatalf("%s was created past the limits", name)
		}
	}
}

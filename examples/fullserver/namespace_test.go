package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// With [imap] namespace_prefix = "INBOX." the built server answers
// NAMESPACE with it, creates INBOX.Archive.2024 as the Maildir's
// .Archive.2024 and lists the folders with the prefix, INBOX without.
func TestIMAPNamespacePrefix(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	dir := t.TempDir()
	s := qaStart(t, bin, qaConfig(t, dir, "[imap]\nnamespace_prefix = \"INBOX.\"\n"))
	s.admin(t, "", "domain", "add", "b.test")
	s.admin(t, "pw-of-u\n", "user", "add", "-force", "u@b.test")
	c := qaDial(t, s.addrs["imaps"], true)
	c.line()
	for _, step := range []struct{ cmd, want, done string }{
		{"LOGIN u@b.test pw-of-u", "", "OK"},
		{"NAMESPACE", `* NAMESPACE (("INBOX." ".")) NIL NIL`, "OK"},
		{"CREATE INBOX.Archive.2024", "", "OK"},
		{"CREATE Archive", "", "NO [CANNOT]"},
		{`LIST "" "*"`, `* LIST (\HasNoChildren) "." "INBOX.Archive.2024"`, "OK"},
		{`LIST "" "%"`, `* LIST (\HasChildren) "." INBOX`, "OK"},
		{"SELECT Archive.2024", "", "NO [NONEXISTENT]"},
		{"SELECT INBOX.Archive.2024", "", "OK"},
	} {
		lines, done := c.imap(step.cmd)
		if !strings.HasPrefix(done, step.done) {
			t.Fatalf("%s: %s (untagged %q)", step.cmd, done, lines)
		}
		found := step.want == ""
		for _, l := range lines {
			found = found || l == step.want
		}
		if !found {
			t.Fatalf("%s: no %q in %q", step.cmd, step.want, lines)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "mail", "b.test", "u", "Maildir", ".Archive.2024", "cur")); err != nil {
		t.Fatalf("INBOX.Archive.2024 is not the Maildir's .Archive.2024: %v", err)
	}
}

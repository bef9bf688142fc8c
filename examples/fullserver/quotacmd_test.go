package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A Maildir moved from Dovecot keeps its maildirsize limit: "user quota"
// shows it as the user's, setting a limit writes both the directory and
// the file, and 0 0 removes it from both.
func TestUserQuotaFromMaildirsize(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "", "domain", "add", "moved.test")
	ok(t, dir, "pw-of-moved-1\n", "user", "add", "eve@moved.test")
	md := filepath.Join(dir, "mail", "moved.test", "eve", "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	size := filepath.Join(md, "maildirsize")
	if err := os.WriteFile(size, []byte("10485760S\n0 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := ok(t, dir, "", "user", "quota", "eve@moved.test")
	if !strings.Contains(out, "limit: 10485760 bytes, 0 messages (0: no limit) (from maildirsize)\n") || !strings.Contains(out, "directory: unlimited\n") {
		t.Fatalf("user quota of a Dovecot Maildir:\n%s", out)
	}
	ok(t, dir, "", "user", "quota", "eve@moved.test", "2048", "10")
	if data, _ := os.ReadFile(size); !strings.HasPrefix(string(data), "2048S,10C\n") {
		t.Fatalf("maildirsize after user quota: %q", data)
	}
	if out := ok(t, dir, "", "user", "list"); !strings.Contains(out, "quota=2048/10") {
		t.Fatalf("user list: %s", out)
	}
	ok(t, dir, "", "user", "quota", "eve@moved.test", "0", "0")
	if out := ok(t, dir, "", "user", "quota", "eve@moved.test"); !strings.Contains(out, "limit: unlimited (from none)\n") {
		t.Fatalf("user quota after 0 0:\n%s", out)
	}
	fails(t, dir, "", 2, "wrong number of arguments", "user", "quota", "eve@moved.test", "5")
}

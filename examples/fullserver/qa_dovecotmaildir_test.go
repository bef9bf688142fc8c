package main

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/interop/dovecottest"
)

// uidFlags parses "* N FETCH (UID u FLAGS (...))" lines, either order,
// into UID -> sorted flags without \Recent.
func uidFlags(t *testing.T, lines []string) map[string]string {
	t.Helper()
	uid := regexp.MustCompile(`UID (\d+)`)
	flags := regexp.MustCompile(`FLAGS \(([^)]*)\)`)
	out := map[string]string{}
	for _, l := range lines {
		u, f := uid.FindStringSubmatch(l), flags.FindStringSubmatch(l)
		if u == nil || f == nil {
			continue
		}
		fl := slices.DeleteFunc(strings.Fields(f[1]), func(s string) bool { return s == `\Recent` })
		slices.Sort(fl)
		out[u[1]] = strings.Join(fl, " ")
	}
	return out
}

// TestQADovecotWrittenMaildir moves a Maildir written by a real Dovecot:
// mail delivered over Dovecot's LMTP with its Maildir++ quota in force,
// flags and keywords set over Dovecot's IMAP; fullserver then serves the
// same tree with the same UIDVALIDITY, UIDs, flags and keywords, and
// leaves Dovecot's maildirsize as it was, byte for byte.
func TestQADovecotWrittenMaildir(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	dir := t.TempDir()
	mailRoot := filepath.Join(dir, "data", "mail")
	d := dovecottest.Start(t, dovecottest.Options{
		Root:      filepath.Join(dir, "dovecot"),
		Protocols: []string{"imap", "lmtp"},
		Users:     map[string]string{"ivy@mig.test": "pw-of-ivy-1234"},
		Home:      mailRoot + "/%d/%n",
		Config: `mail_plugins = quota
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=10240K
}
`,
	})
	// The user's home as the seed's installation has it: owned by the
	// mail user.
	if err := os.MkdirAll(filepath.Join(mailRoot, "mig.test", "ivy"), 0o755); err != nil {
		t.Fatal(err)
	}
	d.ChownTree(t, mailRoot)
	l := qaDial(t, d.LMTP, false)
	l.reply()
	l.dialog([2]string{"LHLO qa.test", "250"})
	for i, subj := range []string{"one", "two", "three"} {
		l.dialog([2]string{"MAIL FROM:<x@elsewhere.test>", "250"}, [2]string{"RCPT TO:<ivy@mig.test>", "250"},
			[2]string{"DATA", "354"})
		if got := l.smtp("Subject: " + subj + "\r\nMessage-ID: <" + subj + "@qa.test>\r\n\r\nbody " + strings.Repeat("x", i*100) + "\r\n."); !strings.HasPrefix(got, "250") {
			t.Fatalf("Dovecot LMTP DATA: %s", got)
		}
	}
	l.smtp("QUIT")

	c := qaDial(t, d.IMAP, false)
	c.line()
	if _, done := c.imap(`LOGIN "ivy@mig.test" "pw-of-ivy-1234"`); !strings.HasPrefix(done, "OK") {
		t.Fatalf("Dovecot LOGIN: %s", done)
	}
	sel, done := c.imap("SELECT INBOX")
	if !strings.HasPrefix(done, "OK") {
		t.Fatalf("Dovecot SELECT: %s", done)
	}
	for _, cmd := range []string{`UID STORE 1 +FLAGS (\Seen $Important)`, `UID STORE 2 +FLAGS (\Flagged \Answered)`, `UID STORE 3 +FLAGS (Work)`} {
		if _, done := c.imap(cmd); !strings.HasPrefix(done, "OK") {
			t.Fatalf("Dovecot %s: %s", cmd, done)
		}
	}
	lines, _ := c.imap("UID FETCH 1:* (UID FLAGS)")
	want := uidFlags(t, lines)
	c.imap("LOGOUT")
	validity := regexp.MustCompile(`UIDVALIDITY \d+`).FindString(strings.Join(sel, "\n"))
	if len(want) != 3 || want["1"] != `$Important \Seen` || validity == "" {
		t.Fatalf("Dovecot's view: %v, %q", want, validity)
	}
	md := filepath.Join(mailRoot, "mig.test", "ivy", "Maildir")
	quota, err := os.ReadFile(filepath.Join(md, "maildirsize"))
	if err != nil || !strings.HasPrefix(string(quota), "10485760S\n") {
		t.Fatalf("Dovecot's maildirsize: %q, %v", quota, err)
	}

	srv := qaStart(t, bin, qaConfig(t, dir, ""))
	srv.admin(t, "", "domain", "add", "mig.test")
	srv.admin(t, "pw-of-ivy-1234\n", "user", "add", "ivy@mig.test")
	f := qaDial(t, srv.addrs["imaps"], true)
	f.line()
	if _, done := f.imap(`LOGIN "ivy@mig.test" "pw-of-ivy-1234"`); !strings.HasPrefix(done, "OK") {
		t.Fatalf("LOGIN: %s", done)
	}
	sel, done = f.imap("SELECT INBOX")
	if !strings.HasPrefix(done, "OK") || !strings.Contains(strings.Join(sel, "\n"), validity) {
		t.Fatalf("SELECT: %v %s, want %s", sel, done, validity)
	}
	lines, _ = f.imap("UID FETCH 1:* (UID FLAGS)")
	if got := uidFlags(t, lines); !maps.Equal(got, want) {
		t.Errorf("UIDs and flags: %v, Dovecot served %v", got, want)
	}
	root, _ := f.imap("GETQUOTAROOT INBOX")
	if !strings.Contains(strings.Join(root, "\n"), "10240)") {
		t.Errorf("GETQUOTAROOT: %v, want Dovecot's 10240 KiB limit", root)
	}
	f.imap("LOGOUT")
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(filepath.Join(md, "maildirsize"))
	if err != nil || string(after) != string(quota) {
		t.Errorf("maildirsize after serving: %q, was %q (%v)", after, quota, err)
	}
}

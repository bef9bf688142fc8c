package local_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp/internal/smtptest"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
)

// A Sieve fileinto :create, or the keep into a junk folder, that the
// Maildir's folder limits refuse delivers to INBOX and creates nothing.
func TestFolderLimitsAtDelivery(t *testing.T) {
	st := newTestStack(t)
	md, err := maildir.New(filepath.Join(st.dir, "mail"), &maildir.Options{Hostname: "test", MaxFolders: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	user := "alice@local.example"
	home := filepath.Dir(st.userDir(user))
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("d.", maildir.DefaultMaxFolderDepth) + "d" // 17 levels
	script := `require ["fileinto","mailbox"];
if header :is "subject" "work" { fileinto :create "Work"; }
elsif header :is "subject" "play" { fileinto :create "Play"; }
elsif header :is "subject" "deep" { fileinto :create "` + deep + `"; }`
	if err := os.WriteFile(filepath.Join(home, ".dovecot.sieve"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	ld := &local.Delivery{Maildirs: md, Directory: st.db, Filter: &local.SieveFilter{MaildirBase: filepath.Join(st.dir, "mail")}}
	send := func(subject string, junk bool) {
		t.Helper()
		smtptest.Deliver(t, ld, &mail.Envelope{ID: "L" + subject, From: "s@far.example", Junk: junk}, []string{user}, "Subject: "+subject+"\r\n\r\nx\r\n")
	}
	send("work", false) // the one folder the limit allows
	send("play", false)
	send("deep", false)
	send("spam", true) // the keep into Junk, which does not exist
	if n := len(st.messages(user, "Work")); n != 1 {
		t.Fatalf("Work has %d messages, want 1", n)
	}
	if n := len(st.messages(user, "")); n != 3 {
		t.Fatalf("INBOX has %d messages, want 3", n)
	}
	for _, name := range []string{".Play", ".Junk", "." + deep} {
		if _, err := os.Stat(filepath.Join(st.userDir(user), name)); err == nil {
			t.Fatalf("%s was created past the limit", name)
		}
	}
}

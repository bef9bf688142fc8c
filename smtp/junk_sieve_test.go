package smtp

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
)

// TestJunkVerdictThenSieve: a message judged spam runs the user's Sieve
// script after the verdict: its explicit fileinto wins, and the implicit
// keep goes to Junk rather than INBOX.
func TestJunkVerdictThenSieve(t *testing.T) {
	st := newTestStack(t)
	ctx := context.Background()
	home := filepath.Dir(st.userDir("alice@local.example"))
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	script := `require ["fileinto","mailbox"]; if header :is "subject" "work" { fileinto :create "Work"; }`
	if err := os.WriteFile(filepath.Join(home, ".dovecot.sieve"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db, Filter: &local.SieveFilter{MaildirBase: filepath.Join(st.dir, "mail")}}
	for _, subject := range []string{"work", "other"} {
		d, err := ld.Start(ctx, &mail.Envelope{ID: "J" + subject, From: "s@far.example", Junk: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.AddRecipient(ctx, "alice@local.example"); err != nil {
			t.Fatal(err)
		}
		if err := d.Body(ctx, mail.BytesBody([]byte("Subject: "+subject+"\r\n\r\nx\r\n"))); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for folder, want := range map[string]int{"Work": 1, "Junk": 1, "": 0} {
		if n := len(st.messages("alice@local.example", folder)); n != want {
			t.Errorf("folder %q: %d messages, want %d", folder, n, want)
		}
	}
}

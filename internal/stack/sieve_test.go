package stack

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/queue"
	"github.com/mailagent/mailagent/store"
)

// TestSieveRedirectToLocalUser: of three recipients, bob's script
// redirects to dave, another local user. The redirect goes through the
// router as a submission would: dave's Maildir has the message with the
// Delivered-To fields of both, only once the delivery is committed;
// bob keeps no copy; nothing is queued and no DNS lookup is made.
func TestSieveRedirectToLocalUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	dns := &dnsauth.MockResolver{}
	base := filepath.Join(dir, "mail")
	st, err := New(ctx, Config{
		Hostname:    "mx.example.test",
		Store:       StoreConfig{Driver: store.DriverSQLite, DSN: filepath.Join(dir, "directory.db")},
		MaildirBase: base,
		Resolver:    dns,
		Queue:       queue.Options{Dir: filepath.Join(dir, "queue")},
		Local:       &local.Delivery{Filter: &local.SieveFilter{MaildirBase: base}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Shutdown(ctx)
	if err := st.Directory.AddDomain(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice@example.test", "bob@example.test", "carol@example.test", "dave@example.test"} {
		if err := st.Directory.AddUser(ctx, &store.User{Address: u, PasswordHash: "{PLAIN}x"}); err != nil {
			t.Fatal(err)
		}
	}
	bob, err := st.Directory.LookupUser(ctx, "bob@example.test")
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Dir(filepath.Join(base, bob.Maildir))
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".dovecot.sieve"), []byte(`redirect "dave@example.test";`), 0o600); err != nil {
		t.Fatal(err)
	}

	rcpts := []string{"alice@example.test", "bob@example.test", "carol@example.test"}
	env := &mail.Envelope{ID: "R1", From: "alice@example.test", AuthUser: "alice@example.test", Received: time.Now(), Recipients: rcpts}
	d, err := st.Router.Start(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rcpts {
		if err := d.AddRecipient(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Body(ctx, mail.BytesBody([]byte("From: alice@example.test\r\nSubject: to all\r\n\r\nHi.\r\n"))); err != nil {
		t.Fatal(err)
	}
	if got := inbox(t, st, base, "dave@example.test"); len(got) != 0 {
		t.Fatalf("dave's INBOX before the commit: %q", got)
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	got := inbox(t, st, base, "dave@example.test")
	if len(got) != 1 || !strings.HasPrefix(got[0], "Return-Path: <alice@example.test>\r\nDelivered-To: dave@example.test\r\nDelivered-To: bob@example.test\r\n") ||
		!strings.Contains(got[0], "Subject: to all") {
		t.Fatalf("dave's INBOX: %q", got)
	}
	if got := inbox(t, st, base, "bob@example.test"); len(got) != 0 {
		t.Fatalf("bob's INBOX (redirected without :copy): %q", got)
	}
	for _, u := range []string{"alice@example.test", "carol@example.test"} {
		if got := inbox(t, st, base, u); len(got) != 1 || !strings.Contains(got[0], "Delivered-To: "+u+"\r\n") {
			t.Fatalf("%s's INBOX: %q", u, got)
		}
	}
	if n := st.Queue.Len(); n != 0 {
		t.Fatalf("%d messages queued, want none", n)
	}
	if n := dns.Queries(""); n != 0 {
		t.Fatalf("%d DNS lookups, want none", n)
	}
}

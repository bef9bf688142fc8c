package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
)

// TestSieveAtDelivery runs users' scripts at local delivery: fileinto with
// flags, discard, a global before script, and a broken script that keeps
// the message in INBOX; the stored files are checked.
func TestSieveAtDelivery(t *testing.T) {
	st := newTestStack(t)
	st.roomForSmall()
	home := func(u string) string { return filepath.Dir(st.userDir(u)) }
	write := func(path, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// alice files lists with \Seen, and other mail into a folder that does
	// not exist (so into INBOX, as Pigeonhole does); small@
	// discards everything; bob's script does not compile.
	write(filepath.Join(home("alice@local.example"), ".dovecot.sieve"), `require ["fileinto","imap4flags","mailbox"];
if header :contains "subject" "[dev]" { fileinto :flags "\\Seen" :create "Lists"; }
elsif header :is "subject" "other" { fileinto "Missing"; }`)
	write(filepath.Join(home("small@local.example"), ".dovecot.sieve"), `discard;`)
	write(filepath.Join(home("bob@local.example"), ".dovecot.sieve"), `fileinto "x";`)
	before := filepath.Join(st.dir, "before.sieve")
	write(before, `require ["fileinto","copy","mailbox"]; if header :contains "x-archive" "yes" { fileinto :copy :create "Archive"; }`)
	filter := &local.SieveFilter{MaildirBase: filepath.Join(st.dir, "mail"), Before: []string{before}}
	ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db, Filter: filter}
	send := func(msg string) {
		t.Helper()
		deliverThree(t, ld, "s@far.example", msg)
	}
	send("Subject: [dev] release\r\nX-Archive: yes\r\n\r\nbody\r\n")
	lists := st.messages("alice@local.example", "Lists")
	if len(lists) != 1 || !strings.HasSuffix(lists[0], "Subject: [dev] release\r\nX-Archive: yes\r\n\r\nbody\r\n") {
		t.Fatalf("alice's Lists: %q", lists)
	}
	if n := len(st.messages("alice@local.example", "")); n != 0 {
		t.Fatalf("alice's INBOX has %d, want 0 (fileinto cancels the keep)", n)
	}
	if n := len(st.messages("alice@local.example", "Archive")); n != 1 {
		t.Fatalf("alice's Archive (before script) has %d, want 1", n)
	}
	ents, _ := os.ReadDir(filepath.Join(st.userDir("alice@local.example"), ".Lists", "cur"))
	if len(ents) != 1 || !strings.HasSuffix(ents[0].Name(), ":2,S") {
		t.Fatalf("alice's Lists/cur: %v, want one file flagged S", ents)
	}
	if n := len(st.messages("small@local.example", "")); n != 0 {
		t.Fatalf("small@ discards but has %d", n)
	}
	if n := len(st.messages("small@local.example", "Archive")); n != 1 {
		t.Fatalf("small@'s Archive (before script) has %d, want 1", n)
	}
	if n := len(st.messages("bob@local.example", "")); n != 1 {
		t.Fatalf("bob's broken script: INBOX has %d, want 1", n)
	}
	send("Subject: other\r\n\r\nbody\r\n")
	if n := len(st.messages("alice@local.example", "")); n != 1 {
		t.Fatalf("alice's INBOX after fileinto a missing folder: %d, want 1", n)
	}
}

// TestSieveEditheaderAtDelivery: the stored copy carries the script's
// header edits, below Return-Path and Delivered-To, with the body intact.
func TestSieveEditheaderAtDelivery(t *testing.T) {
	st := newTestStack(t)
	ctx := context.Background()
	home := filepath.Dir(st.userDir("alice@local.example"))
	os.MkdirAll(home, 0o700)
	if err := os.WriteFile(filepath.Join(home, ".dovecot.sieve"), []byte(`require ["editheader"];
addheader "X-Filtered" "yes"; deleteheader "x-drop"; addheader :last "X-Note" "Grüße";`), 0o600); err != nil {
		t.Fatal(err)
	}
	ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db, Filter: &local.SieveFilter{MaildirBase: filepath.Join(st.dir, "mail")}}
	d, _ := ld.Start(ctx, &mail.Envelope{ID: "E1", From: "s@far.example"})
	if err := d.AddRecipient(ctx, "alice@local.example"); err != nil {
		t.Fatal(err)
	}
	if err := d.Body(ctx, mail.BytesBody([]byte("Subject: hi\r\nX-Drop: 1\r\n\r\nthe body\r\n"))); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := st.messages("alice@local.example", "")
	want := "Return-Path: <s@far.example>\r\nDelivered-To: alice@local.example\r\nX-Filtered: yes\r\nSubject: hi\r\nX-Note: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nthe body\r\n"
	if len(msgs) != 1 {
		t.Fatalf("INBOX has %d messages", len(msgs))
	}
	if msgs[0] != want {
		t.Fatalf("stored %q\nwant   %q", msgs[0], want)
	}
}

// TestSieveVacationAtDelivery: a vacation reply goes out through the
// queue from the null sender, once per sender within the period, never to
// bulk mail; the message itself is kept.
func TestSieveVacationAtDelivery(t *testing.T) {
	st := newTestStack(t)
	ctx := context.Background()
	home := filepath.Dir(st.userDir("alice@local.example"))
	os.MkdirAll(home, 0o700)
	if err := os.WriteFile(filepath.Join(home, ".dovecot.sieve"), []byte(`require "vacation";
vacation :days 2 :subject "Away" "Back on Monday.";`), 0o600); err != nil {
		t.Fatal(err)
	}
	ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db,
		Filter: &local.SieveFilter{MaildirBase: filepath.Join(st.dir, "mail"), Outbound: st.queue}}
	deliver := func(from, msg string) {
		t.Helper()
		d, _ := ld.Start(ctx, &mail.Envelope{ID: "V1", From: from})
		if err := d.AddRecipient(ctx, "alice@local.example"); err != nil {
			t.Fatal(err)
		}
		if err := d.Body(ctx, mail.BytesBody([]byte(msg))); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	first := "From: s@far.example\r\nTo: alice@local.example\r\nSubject: lunch?\r\nMessage-ID: <m1@far.example>\r\n\r\nhi\r\n"
	deliver("s@far.example", first)
	deliver("s@far.example", first)
	deliver("news@far.example", "From: news@far.example\r\nTo: alice@local.example\r\nPrecedence: bulk\r\nSubject: news\r\n\r\nx\r\n")
	sent := st.queue.All()
	if len(sent) != 1 {
		t.Fatalf("%d replies sent, want 1: %+v", len(sent), sent)
	}
	r := sent[0]
	if r.From != "" || len(r.Rcpts) != 1 || r.Rcpts[0] != "s@far.example" {
		t.Fatalf("reply envelope: from %q to %v", r.From, r.Rcpts)
	}
	for _, want := range []string{"From: alice@local.example\r\n", "To: s@far.example\r\n", "Subject: Away\r\n",
		"In-Reply-To: <m1@far.example>\r\n", "Auto-Submitted: auto-replied", "\r\n\r\nBack on Monday.\r\n"} {
		if !strings.Contains(r.Data, want) {
			t.Errorf("reply lacks %q:\n%s", want, r.Data)
		}
	}
	if n := len(st.messages("alice@local.example", "")); n != 3 {
		t.Fatalf("INBOX has %d, want the 3 messages kept", n)
	}
}

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

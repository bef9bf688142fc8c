package stack

import (
	"context"
	"net"
	netsmtp "net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/imap"
	"github.com/mailagent/mailagent/smtp"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/queue"
	"github.com/mailagent/mailagent/store"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// inbox returns the messages in user's INBOX, read from the Maildir.
func inbox(t *testing.T, st *Stack, base, user string) []string {
	t.Helper()
	u, err := st.Directory.LookupUser(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(base, u.Maildir, sub)
		ents, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
	}
	return out
}

// TestStack: one Config gives a working installation. A message over the
// MX lands in the user's Maildir; a message the router queues for a
// domain that takes no mail comes back to its local sender as a
// notification through the router the queue was built with; Shutdown
// stops every listener and is idempotent.
func TestStack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	dns := &dnsauth.MockResolver{}
	dns.AddMX("nomail.test", ".", 0)
	mx, imapLn := listen(t), listen(t)
	base := filepath.Join(dir, "mail")
	st, err := New(ctx, Config{
		Hostname:    "mx.example.test",
		Store:       StoreConfig{Driver: store.DriverSQLite, DSN: filepath.Join(dir, "directory.db")},
		MaildirBase: base,
		Resolver:    dns,
		Queue:       queue.Options{Dir: filepath.Join(dir, "queue")},
		SMTP:        []Listener[smtp.Options]{{Name: "mx", Listener: mx, Options: smtp.Options{Role: smtp.MX, SpoolDir: dir}}},
		IMAP:        []Listener[imap.Options]{{Name: "imap", Listener: imapLn, Options: imap.Options{AllowInsecureAuth: true}}},
		ServeError:  func(name string, err error) { t.Errorf("%s: %v", name, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Shutdown(ctx)
	if err := st.Directory.AddDomain(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice@example.test", "bob@example.test"} {
		if err := st.Directory.AddUser(ctx, &store.User{Address: u, PasswordHash: "{PLAIN}x"}); err != nil {
			t.Fatal(err)
		}
	}
	st.Serve()

	err = netsmtp.SendMail(mx.Addr().String(), nil, "s@far.example", []string{"bob@example.test"},
		[]byte("From: s@far.example\r\nSubject: hello\r\n\r\nHi.\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := inbox(t, st, base, "bob@example.test")
	if len(got) != 1 || !strings.Contains(got[0], "Delivered-To: bob@example.test\r\n") || !strings.Contains(got[0], "Subject: hello") {
		t.Fatalf("bob's INBOX: %q", got)
	}

	env := &mail.Envelope{ID: "T1", From: "alice@example.test", AuthUser: "alice@example.test", Received: time.Now()}
	d, err := st.Router.Start(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AddRecipient(ctx, "x@nomail.test"); err != nil {
		t.Fatal(err)
	}
	env.Recipients = []string{"x@nomail.test"}
	if err := d.Body(ctx, mail.BytesBody([]byte("From: alice@example.test\r\nSubject: void\r\n\r\n.\r\n"))); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Queue.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	got = inbox(t, st, base, "alice@example.test")
	if len(got) != 1 || !strings.Contains(got[0], "x@nomail.test") || !strings.Contains(got[0], "Return-Path: <>") {
		t.Fatalf("alice's INBOX after the null MX: %q", got)
	}

	if err := st.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ln := range []net.Listener{mx, imapLn} {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			t.Errorf("%s still accepts after Shutdown", ln.Addr())
		}
	}
	if err := st.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestNewFails: a Config New cannot build is an error, and the listeners
// it was given are closed.
func TestNewFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mx := listen(t)
	_, err := New(context.Background(), Config{
		Store:       StoreConfig{Driver: store.DriverSQLite, DSN: filepath.Join(dir, "directory.db")},
		MaildirBase: filepath.Join(dir, "mail"),
		Resolver:    &dnsauth.MockResolver{},
		// No queue directory.
		SMTP: []Listener[smtp.Options]{{Name: "mx", Listener: mx, Options: smtp.Options{Role: smtp.MX}}},
	})
	if err == nil || !strings.Contains(err.Error(), "queue") {
		t.Fatalf("New without a queue directory: %v", err)
	}
	if c, err := net.Dial("tcp", mx.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the listener is still open after New failed")
	}
}

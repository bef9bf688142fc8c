package queue

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/interop/dovecottest"
)

// TestDovecotLMTP delivers through the LMTP transport into a real Dovecot
// over TCP and a Unix socket: both copies land in bob's Maildir, and the
// unknown recipient gets a notification carrying Dovecot's reply.
func TestDovecotLMTP(t *testing.T) {
	t.Parallel()
	dove := dovecottest.Start(t, dovecottest.Options{
		Protocols: []string{"lmtp"},
		Users:     map[string]string{"bob@b.test": "x"},
		MailUser:  "mail",
		Separator: "/",
		Config:    "recipient_delimiter = +\nprotocol lmtp {\n  postmaster_address = postmaster@b.test\n}\n",
	})
	root, addr, sock := dove.Root, dove.LMTP, dove.LMTPSocket
	if err := os.Mkdir(filepath.Join(root, "mail"), 0o755); err != nil {
		t.Fatal(err)
	}
	dove.ChownTree(t, filepath.Join(root, "mail"))
	f := newFixture(t, 1, func(o *Options) {
		o.Route = func(ctx context.Context, rcpt string) (string, error) {
			if strings.Contains(rcpt, "+tcp@") {
				return "lmtp:" + addr, nil
			}
			return "lmtp:unix:" + sock, nil
		}
	})
	f.enqueue(t, "alice@a.test", []string{"bob@b.test", "nobody@b.test"}, signed)
	f.enqueue(t, "alice@a.test", []string{"bob+tcp@b.test"}, strings.Replace(signed, "hello", "over tcp", 1))
	f.runDue(t)

	newDir := filepath.Join(root, "mail", "b.test", "bob", "Maildir", "new")
	ents, err := os.ReadDir(newDir)
	if err != nil || len(ents) != 2 {
		t.Fatalf("bob's Maildir/new: %d files, %v", len(ents), err)
	}
	var subjects []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(newDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.Contains(s, "Delivered-To: bob") || !strings.Contains(s, "Hi Bob,") {
			t.Errorf("delivered message:\n%s", s)
		}
		if strings.Contains(s, "Subject: over tcp") {
			subjects = append(subjects, "tcp")
		} else if strings.Contains(s, "Subject: hello") {
			subjects = append(subjects, "unix")
		}
	}
	if len(subjects) != 2 {
		t.Errorf("copies: %v", subjects)
	}
	dsns := f.bounces.all()
	if len(dsns) != 1 {
		t.Fatalf("%d notifications, want one for nobody@b.test", len(dsns))
	}
	r := parseDSN(t, dsns[0].data).recipients[0]
	if r["Final-Recipient"] != "rfc822; nobody@b.test" || !strings.HasPrefix(r["Status"], "5.1.1") || !strings.Contains(r["Diagnostic-Code"], "550") {
		t.Errorf("notification: %+v", r)
	}
	if ids := f.ids(t); len(ids) != 0 {
		t.Errorf("still queued: %v", ids)
	}
}

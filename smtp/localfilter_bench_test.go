package smtp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
)

// BenchmarkLocalDeliverySieve delivers one 4.5 KB message to one local
// user (staged, fsynced, committed) without a filter, and with a
// SieveFilter running a compiled 20-rule script that evaluates every rule
// and files the message into a folder.
func BenchmarkLocalDeliverySieve(b *testing.B) {
	var script strings.Builder
	script.WriteString(`require ["fileinto","envelope","imap4flags","variables","relational","comparator-i;ascii-numeric","subaddress","regex","mailbox"];` + "\n")
	for i := range 16 {
		fmt.Fprintf(&script, "if header :contains \"subject\" \"project-%d\" { fileinto \"Projects/%d\"; stop; }\n", i, i)
	}
	script.WriteString(`if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "5" { fileinto "Junk"; stop; }` + "\n")
	script.WriteString(`if header :matches "list-id" "*<*.*>*" { fileinto "Lists"; stop; }` + "\n")
	script.WriteString(`if header :regex "subject" "^(re|fwd):" { addflag "$Reply"; }` + "\n")
	script.WriteString(`if address :domain :is "from" "far.example" { fileinto :create "Far"; }` + "\n")
	msg := []byte("From: s@far.example\r\nTo: alice@local.example\r\nSubject: Hello\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@far.example>\r\n\r\n" +
		strings.Repeat("Body line of an ordinary message, seventy characters or so long.\r\n", 60))
	for _, mode := range []string{"none", "sieve20"} {
		b.Run(mode, func(b *testing.B) {
			st := newTestStack(b)
			ld := &local.Delivery{Maildirs: st.maildirs, Directory: st.db}
			folder := ""
			if mode == "sieve20" {
				home := filepath.Dir(st.userDir("alice@local.example"))
				os.MkdirAll(home, 0o700)
				if err := os.WriteFile(filepath.Join(home, ".dovecot.sieve"), []byte(script.String()), 0o600); err != nil {
					b.Fatal(err)
				}
				ld.Filter = &local.SieveFilter{MaildirBase: filepath.Join(st.dir, "mail")}
				folder = "Far"
			}
			ctx := context.Background()
			body := mail.BytesBody(msg)
			b.ResetTimer()
			for b.Loop() {
				d, _ := ld.Start(ctx, &mail.Envelope{ID: "B", From: "s@far.example"})
				if err := d.AddRecipient(ctx, "alice@local.example"); err != nil {
					b.Fatal(err)
				}
				if err := d.Body(ctx, body); err != nil {
					b.Fatal(err)
				}
				if err := d.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if n := len(st.messages("alice@local.example", folder)); n != b.N {
				b.Fatalf("%d messages in %q, want %d", n, folder, b.N)
			}
		})
	}
}

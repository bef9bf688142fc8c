package mailtest

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// The whole path: submission at A, MX at B, B's Maildir, read over IMAP and
// then POP3, which deletes it.
func TestSubmitThenReadOverIMAPAndPOP3(t *testing.T) {
	a, b := twoDomains(t)
	if err := a.Submit("alice@a.test", "pw", "alice@a.test", []string{"bob@b.test"},
		"From: alice@a.test\nTo: bob@b.test\nSubject: read me\n\nover IMAP and POP3\n"); err != nil {
		t.Fatal(err)
	}
	b.WaitMessage("bob@b.test", "INBOX")

	c := b.DialIMAP("bob@b.test", "pw")
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 1 {
		t.Fatalf("SELECT: %d messages", sel.NumMessages)
	}
	section := &imap.FetchItemBodySection{}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	body := string(msgs[0].FindBodySection(section))
	if !strings.Contains(body, "Subject: read me") || !strings.Contains(body, "over IMAP and POP3") {
		t.Fatalf("IMAP body:\n%s", body)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}

	p := b.DialPOP3("bob@b.test", "pw")
	n, _, err := p.Stat()
	if err != nil || n != 1 {
		t.Fatalf("STAT: %d, %v", n, err)
	}
	raw, err := p.Retr(1)
	if err != nil || !strings.Contains(string(raw), "over IMAP and POP3") {
		t.Fatalf("RETR: %v\n%s", err, raw)
	}
	if err := p.Dele(1); err != nil {
		t.Fatal(err)
	}
	if err := p.Quit(); err != nil {
		t.Fatal(err)
	}
	if left := b.Messages("bob@b.test", "INBOX"); len(left) != 0 {
		t.Fatalf("%d messages left after POP3 DELE+QUIT", len(left))
	}
}

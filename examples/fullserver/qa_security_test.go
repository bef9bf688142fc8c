package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQASecurityDefaults probes the running binary the way an attacker
// would and checks the README's security defaults hold on the wire and
// on disk: no relay through any address trick, no passwords before TLS,
// no SMTP smuggling, recipient and size limits, and mailbox names that
// cannot leave the Maildir.
func TestQASecurityDefaults(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	dir := t.TempDir()
	cfg := qaConfig(t, dir, "")
	if err := os.WriteFile(cfg, append(qaRead(t, cfg), "[limits]\nmax_recipients = 3\nmax_message_bytes = 100000\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	s := qaStart(t, bin, cfg)
	s.admin(t, "", "domain", "add", "sec.test")
	s.admin(t, "pw-of-victor\n", "user", "add", "victor@sec.test")
	maildir := filepath.Join(dir, "data", "mail", "sec.test", "victor", "Maildir")

	t.Run("relay", func(t *testing.T) {
		for _, rcpt := range []string{
			"<user%elsewhere.test@sec.test>",
			"<@sec.test:user@elsewhere.test>",
			`<"user@elsewhere.test"@sec.test>`,
			"<elsewhere.test!user@sec.test>",
			"<user@elsewhere.test>",
			"<user@[127.0.0.1]>",
		} {
			c := qaSMTP(t, s.addrs["mx"])
			c.smtp("EHLO client.test")
			c.smtp("MAIL FROM:<someone@elsewhere.test>")
			if r := c.smtp("RCPT TO:" + rcpt); !strings.HasPrefix(r, "5") {
				t.Errorf("RCPT TO:%s through the MX: %q, want a 5xx refusal", rcpt, r)
			}
			c.smtp("QUIT")
		}
		if q := s.admin(t, "", "queue", "list"); q != "Mail queue is empty\n" {
			t.Errorf("something was queued for relay:\n%s", q)
		}
	})

	t.Run("auth before TLS", func(t *testing.T) {
		c := qaSMTP(t, s.addrs["submission"])
		c.send("EHLO client.test")
		var ehlo []string
		for {
			l := c.line()
			ehlo = append(ehlo, l)
			if l[3] != '-' {
				break
			}
		}
		if strings.Contains(strings.Join(ehlo, "\n"), "AUTH") {
			t.Errorf("submission offers AUTH before STARTTLS:\n%s", strings.Join(ehlo, "\n"))
		}
		if r := c.smtp("AUTH PLAIN AHZpY3RvckBzZWMudGVzdABwdy1vZi12aWN0b3I="); !strings.HasPrefix(r, "538") && !strings.HasPrefix(r, "530") {
			t.Errorf("AUTH before STARTTLS: %q", r)
		}

		i := qaDial(t, s.addrs["imap"], false)
		if g := i.line(); !strings.Contains(g, "LOGINDISABLED") {
			t.Errorf("IMAP greeting before TLS lacks LOGINDISABLED: %q", g)
		}
		if _, done := i.imap("LOGIN victor@sec.test pw-of-victor"); !strings.HasPrefix(done, "NO") {
			t.Errorf("IMAP LOGIN before STARTTLS: %q", done)
		}
		if _, done := i.imap("STARTTLS"); !strings.HasPrefix(done, "OK") {
			t.Fatalf("IMAP STARTTLS: %q", done)
		}
		i.starttls()
		if _, done := i.imap("LOGIN victor@sec.test pw-of-victor"); !strings.HasPrefix(done, "OK") {
			t.Errorf("IMAP LOGIN after STARTTLS: %q", done)
		}

		p := qaDial(t, s.addrs["pop3"], false)
		p.line()
		if l := p.pop("USER victor@sec.test"); !strings.HasPrefix(l, "-ERR") {
			t.Errorf("POP3 USER before STLS: %q", l)
		}
		if l := p.pop("AUTH PLAIN AHZpY3RvckBzZWMudGVzdABwdy1vZi12aWN0b3I="); !strings.HasPrefix(l, "-ERR") {
			t.Errorf("POP3 AUTH before STLS: %q", l)
		}
	})

	t.Run("smuggling", func(t *testing.T) {
		for name, body := range map[string]string{
			"LF.CRLF": "Subject: a\r\n\r\nhello\n.\r\nMAIL FROM:<x@elsewhere.test>\r\nRCPT TO:<victor@sec.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n",
			"CRLF.LF": "Subject: b\r\n\r\nhello\r\n.\nMAIL FROM:<x@elsewhere.test>\r\n.\r\n",
			"CR.CR":   "Subject: c\r\n\r\nhello\r.\rMAIL FROM:<x@elsewhere.test>\r\n.\r\n",
		} {
			c := qaSMTP(t, s.addrs["mx"])
			c.smtp("EHLO client.test")
			c.smtp("MAIL FROM:<someone@elsewhere.test>")
			c.smtp("RCPT TO:<victor@sec.test>")
			if r := c.smtp("DATA"); !strings.HasPrefix(r, "354") {
				t.Fatalf("%s: DATA: %q", name, r)
			}
			c.conn.Write([]byte(body))
			if r := c.reply(); !strings.HasPrefix(r, "5") {
				t.Errorf("%s: end of DATA: %q, want a refusal", name, r)
			}
			// The next reply must answer NOOP, not a smuggled command.
			if r := c.smtp("NOOP"); !strings.HasPrefix(r, "250") {
				t.Errorf("%s: NOOP after refused DATA: %q", name, r)
			}
			c.smtp("QUIT")
		}
		if n := qaCountFiles(t, filepath.Join(maildir, "new")) + qaCountFiles(t, filepath.Join(maildir, "cur")); n != 0 {
			t.Errorf("%d messages stored from smuggling attempts", n)
		}
	})

	t.Run("limits", func(t *testing.T) {
		c := qaSMTP(t, s.addrs["mx"])
		c.smtp("EHLO client.test")
		if r := c.smtp("MAIL FROM:<someone@elsewhere.test> SIZE=200000"); !strings.HasPrefix(r, "552") {
			t.Errorf("declared SIZE above the limit: %q", r)
		}
		c.smtp("RSET")
		c.smtp("MAIL FROM:<someone@elsewhere.test>")
		for i := 1; i <= 4; i++ {
			r := c.smtp("RCPT TO:<victor@sec.test>")
			if i <= 3 && !strings.HasPrefix(r, "250") {
				t.Errorf("recipient %d: %q", i, r)
			}
			if i == 4 && !strings.HasPrefix(r, "452") {
				t.Errorf("recipient beyond max_recipients: %q, want 452", r)
			}
		}
		c.smtp("DATA")
		big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 120) + ".\r\n"
		c.conn.Write([]byte(big))
		if r := c.reply(); !strings.HasPrefix(r, "552") {
			t.Errorf("message above max_message_bytes: %q, want 552", r)
		}
		if n := qaCountFiles(t, filepath.Join(maildir, "new")); n != 0 {
			t.Errorf("%d oversize messages stored", n)
		}
	})

	t.Run("mailbox names", func(t *testing.T) {
		c := qaDial(t, s.addrs["imaps"], true)
		c.line()
		if _, done := c.imap("LOGIN victor@sec.test pw-of-victor"); !strings.HasPrefix(done, "OK") {
			t.Fatalf("LOGIN: %q", done)
		}
		for _, name := range []string{`"../escape"`, `".."`, `"a/../../escape"`, `"/tmp/escape"`, `"INBOX/../../escape"`} {
			if _, done := c.imap("CREATE " + name); !strings.HasPrefix(done, "NO") {
				t.Errorf("CREATE %s: %q", name, done)
			}
			if _, done := c.imap("RENAME INBOX " + name); !strings.HasPrefix(done, "NO") {
				t.Errorf("RENAME INBOX %s: %q", name, done)
			}
		}
		for _, p := range []string{
			filepath.Join(dir, "data", "mail", "sec.test", "victor", "escape"),
			filepath.Join(dir, "data", "mail", "sec.test", "escape"),
			filepath.Join(dir, "data", "mail", "escape"),
			"/tmp/escape",
		} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s was created", p)
			}
		}
	})
	if err := s.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

func qaRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func qaCountFiles(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

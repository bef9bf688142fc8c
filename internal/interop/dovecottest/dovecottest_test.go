package dovecottest

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStart: one instance serving IMAP, POP3 and LMTP answers on each
// address with its greeting, logs a passwd-file user in, delivers over
// LMTP into that user's Maildir below Root, and stops with the test.
func TestStart(t *testing.T) {
	var d *Dovecot
	t.Run("serve", func(t *testing.T) { d = serve(t) })
	// A skipped subtest (the peer is not installed) leaves nothing to check.
	if t.Failed() || d == nil {
		return
	}
	for _, a := range []string{d.IMAP, d.POP3, d.LMTP} {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the test", a)
		}
	}
}

func serve(t *testing.T) *Dovecot {
	d := Start(t, Options{
		Protocols: []string{"imap", "pop3", "lmtp"},
		Users:     map[string]string{"alice@example.org": "secret"},
	})
	mail := filepath.Join(d.Root, "mail")
	if err := os.Mkdir(mail, 0o755); err != nil {
		t.Fatal(err)
	}
	d.ChownTree(t, mail)

	talk := func(network, addr string, lines ...string) []string {
		t.Helper()
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(c)
		var got []string
		read := func() {
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("%s: %v after %q", addr, err, got)
				}
				got = append(got, strings.TrimRight(l, "\r\n"))
				// LMTP continues multi-line replies with "NNN-".
				if len(l) < 4 || l[3] != '-' {
					return
				}
			}
		}
		read()
		for _, l := range lines {
			if _, err := c.Write([]byte(l + "\r\n")); err != nil {
				t.Fatal(err)
			}
			if l != "" && !strings.HasPrefix(l, "Subject:") && l != "hello" {
				read()
			}
		}
		return got
	}
	if got := talk("tcp", d.IMAP, "a LOGIN alice@example.org secret", "b LOGOUT", ""); !strings.HasPrefix(got[0], "* OK") || !strings.HasPrefix(got[1], "a OK") {
		t.Errorf("IMAP: %q", got)
	}
	lmtp := []string{"LHLO test", "MAIL FROM:<x@example.net>", "RCPT TO:<alice@example.org>", "DATA", "Subject: s", "", "hello", ".", "QUIT"}
	for _, addr := range []struct{ network, addr string }{{"tcp", d.LMTP}, {"unix", d.LMTPSocket}} {
		got := talk(addr.network, addr.addr, lmtp...)
		if !strings.HasPrefix(got[0], "220") || !strings.HasPrefix(got[len(got)-2], "250") {
			t.Errorf("LMTP over %s: %q", addr.network, got)
		}
	}
	if got := talk("tcp", d.POP3, "USER alice@example.org", "PASS secret", "STAT", "QUIT"); !strings.HasPrefix(got[0], "+OK") || !strings.HasPrefix(got[3], "+OK 2 ") {
		t.Errorf("POP3: %q", got)
	}
	// Dovecot's POP3 session moved both from new/ to cur/.
	ents, err := os.ReadDir(filepath.Join(mail, "example.org", "alice", "Maildir", "cur"))
	if err != nil || len(ents) != 2 {
		t.Errorf("Maildir/cur: %d files, %v", len(ents), err)
	}
	c, err := net.Dial("unix", d.AuthSocket)
	if err != nil {
		t.Fatalf("auth socket: %v", err)
	}
	c.Close()
	return d
}

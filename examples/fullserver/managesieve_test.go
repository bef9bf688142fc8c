package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/examples/fullserver/config"
)

// TestManageSieveListener starts the server with a ManageSieve listener and
// uploads and activates a script as a user: it lands where Dovecot keeps
// it, beside the user's Maildir, and a message then received over the MX
// is filed by it.
func TestManageSieveListener(t *testing.T) {
	s, addrs := startAll(t, func(c *config.Config) { c.Listen.ManageSieve = "127.0.0.1:0" })
	addr := addrs["managesieve"]
	if addr == "" {
		t.Fatalf("no managesieve listener in %v", addrs)
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(nc)
	reply := func() string {
		t.Helper()
		var all []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("after %q: %v", all, err)
			}
			all = append(all, strings.TrimRight(l, "\r\n"))
			if strings.HasPrefix(l, "OK") || strings.HasPrefix(l, "NO") || strings.HasPrefix(l, "BYE") {
				return strings.Join(all, "\n")
			}
		}
	}
	send := func(s string) string {
		t.Helper()
		fmt.Fprint(nc, s+"\r\n")
		return reply()
	}
	if g := reply(); !strings.Contains(g, `"STARTTLS"`) {
		t.Fatalf("greeting: %s", g)
	}
	if r := send("STARTTLS"); !strings.HasPrefix(r, "OK") {
		t.Fatalf("STARTTLS: %s", r)
	}
	tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
	nc = tc
	br = bufio.NewReader(tc)
	reply()
	ir := base64.StdEncoding.EncodeToString([]byte("\x00u@h.test\x00pw-of-u"))
	if r := send(`AUTHENTICATE "PLAIN" "` + ir + `"`); !strings.HasPrefix(r, "OK") {
		t.Fatalf("AUTHENTICATE: %s", r)
	}
	script := "require [\"fileinto\", \"mailbox\"];\r\nif header :contains \"subject\" \"report\" { fileinto :create \"Archive\"; }\r\n"
	if r := send(fmt.Sprintf("PUTSCRIPT \"main\" {%d+}\r\n%s", len(script), script)); r != "OK" {
		t.Fatalf("PUTSCRIPT: %s", r)
	}
	if r := send(`SETACTIVE "main"`); r != "OK" {
		t.Fatalf("SETACTIVE: %s", r)
	}
	home := filepath.Join(s.cfg.Path(s.cfg.Maildir.Base, "mail"), "h.test", "u")
	if b, err := os.ReadFile(filepath.Join(home, ".dovecot.sieve")); err != nil || string(b) != script {
		t.Fatalf("active script through .dovecot.sieve: %q, %v", b, err)
	}

	mxSend(t, addrs["mx"], "", "u@h.test", "From: r@far.example\r\nSubject: weekly report\r\n\r\nnumbers\r\n")
	maildir := filepath.Join(home, "Maildir")
	ents, err := os.ReadDir(filepath.Join(maildir, ".Archive", "new"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("Archive/new: %v, %v; want the message the script filed", ents, err)
	}
	if inbox, _ := os.ReadDir(filepath.Join(maildir, "new")); len(inbox) != 0 {
		t.Fatalf("INBOX has %d messages, want none", len(inbox))
	}
}

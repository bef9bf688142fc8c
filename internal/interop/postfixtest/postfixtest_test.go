package postfixtest

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// TestStart: an instance greets on its smtpd with the configured
// hostname and the extra smtpd argument's banner, holds mail in the
// incoming queue while qmgr is off, lists it with postqueue once qmgr is
// back (relaying to a closed port keeps it deferred), writes Files to
// Etc, and stops with the test.
func TestStart(t *testing.T) {
	var p *Postfix
	t.Run("serve", func(t *testing.T) { p = serve(t) })
	// A skipped subtest (the peer is not installed) leaves nothing to check.
	if t.Failed() || p == nil {
		return
	}
	if c, err := net.Dial("tcp", p.SMTPD); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the test", p.SMTPD)
	}
}

func serve(t *testing.T) *Postfix {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	p := Start(t, Options{
		Main:      "myhostname = start.postfix.test\nrelayhost = [" + closed.Addr().String() + "]\n",
		SMTPDArgs: " -o smtpd_banner=${myhostname}-postfixtest",
		Services:  "flush     unix  n       -       n       1000?   0       flush\n",
		Files:     map[string]string{"vmailbox": "alice@local.example OK\n"},
	})
	if b, err := os.ReadFile(filepath.Join(p.Etc, "vmailbox")); err != nil || string(b) != "alice@local.example OK\n" {
		t.Errorf("vmailbox: %q, %v", b, err)
	}
	p.SetService(t, "qmgr", false)
	conn, err := net.DialTimeout("tcp", p.SMTPD, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	greeting, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || greeting != "220 start.postfix.test-postfixtest\r\n" {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	conn.Close()
	c, err := gosmtp.Dial(p.SMTPD)
	if err != nil {
		t.Fatal(err)
	}
	c.CommandTimeout, c.SubmissionTimeout = 30*time.Second, 30*time.Second
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("a@client.test", []string{"b@remote.test"}, strings.NewReader("Subject: s\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ents, _ := os.ReadDir(filepath.Join(p.Spool, "incoming"))
		if len(ents) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incoming queue: %d entries", len(ents))
		}
		time.Sleep(20 * time.Millisecond) // polling: Postfix gives no signal
	}
	p.SetService(t, "qmgr", true)
	for !strings.Contains(p.Run(t, "postqueue", "-p"), "b@remote.test") {
		if time.Now().After(deadline) {
			t.Fatalf("postqueue -p does not list the message:\n%s", p.Run(t, "postqueue", "-p"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(p.Log(), "overriding earlier entry") {
		t.Errorf("Main's myhostname did not replace the base's:\n%s", p.Log())
	}
	return p
}

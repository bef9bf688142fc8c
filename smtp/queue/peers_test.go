package queue

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// waitListening polls addresses until each accepts a connection: the
// outside servers give no readiness signal to wait for.
func waitListening(tb testing.TB, what string, addrs ...string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range addrs {
		network := "tcp"
		if strings.HasPrefix(a, "/") {
			network = "unix"
		}
		for {
			c, err := net.Dial(network, a)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("%s did not listen on %s: %v", what, a, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// openToMailUser lets the unprivileged processes of Dovecot and Postfix
// reach dir (t.TempDir makes its parents private).
func openToMailUser(dir string) {
	for d := dir; d != filepath.Dir(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
}

// sendAll sends msgs from alice to bob over one SMTP connection.
func sendAll(tb testing.TB, addr string, msgs [][]byte) {
	tb.Helper()
	c, err := gosmtp.Dial(addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	for _, m := range msgs {
		if err := c.SendMail("alice@a.test", []string{"bob@b.test"}, strings.NewReader(string(m))); err != nil {
			tb.Fatal(err)
		}
	}
	c.Quit()
}

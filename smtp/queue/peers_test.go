package queue

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailagent/mailagent/internal/interop"
)

// waitListening polls addresses until each accepts a connection.
func waitListening(tb testing.TB, what string, addrs ...string) {
	tb.Helper()
	interop.WaitListening(tb, what, nil, addrs...)
}

// openToMailUser lets the unprivileged processes of Postfix reach dir
// (t.TempDir makes it and its parents below the temporary directory
// private). The temporary directory itself keeps its mode: making it
// 0755 would take its sticky bit and everyone else's right to write.
func openToMailUser(dir string) {
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
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

package queue

import (
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

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

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/examples/fullserver/config"
	"github.com/mailagent/mailagent/smtp/queue"
)

// TestSieveRedirectSender: maildir.sieve_redirect_sender decides the
// envelope sender of a Sieve redirect queued for a remote address: the
// message's own with "original", the redirecting user's with "user".
func TestSieveRedirectSender(t *testing.T) {
	for _, c := range []struct{ mode, want string }{{"original", "s@far.example"}, {"user", "u@h.test"}} {
		t.Run(c.mode, func(t *testing.T) {
			s, addrs := startAll(t, func(cfg *config.Config) { cfg.Maildir.SieveRedirectSender = c.mode })
			home := filepath.Join(s.cfg.Path(s.cfg.Maildir.Base, "mail"), "h.test", "u")
			if err := os.MkdirAll(home, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(home, ".dovecot.sieve"), []byte(`redirect "x@far.example";`), 0o600); err != nil {
				t.Fatal(err)
			}
			mxSend(t, addrs["mx"], "s@far.example", "u@h.test", "From: s@far.example\r\nSubject: on\r\n\r\nbody\r\n")
			var queued []*queue.Info
			if err := s.queue.List(context.Background(), func(in *queue.Info) error { queued = append(queued, in); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(queued) != 1 || queued[0].From != c.want || len(queued[0].Recipients) != 1 || queued[0].Recipients[0].Address != "x@far.example" {
				t.Fatalf("queued: %+v, want one redirect from %s to x@far.example", queued, c.want)
			}
		})
	}
}

// mxSend delivers one message over the MX at addr, each reply checked.
func mxSend(t *testing.T, addr, from, rcpt, message string) {
	t.Helper()
	w, err := dialWire(addr, "127.0.0.1", nil, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.conn.Close()
	w.smtpReply()
	for _, l := range []struct{ line, want string }{
		{"EHLO client.example", "250"}, {"MAIL FROM:<" + from + ">", "250"}, {"RCPT TO:<" + rcpt + ">", "250"}, {"DATA", "354"},
		{message + ".", "250"},
	} {
		if r, err := w.cmd("smtp", l.line); err != nil || !strings.HasPrefix(r, l.want) {
			t.Fatalf("%q: %q, %v", l.line, r, err)
		}
	}
}

package queue_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/smtp"
)

// TestSpoolFailureReply: when the queue cannot write its spool (its tmp
// directory replaced by a file, which even root cannot create files in),
// a message for a remote recipient is refused over SMTP and LMTP with a
// fixed temporary reply that names no path and carries no system error.
func TestSpoolFailureReply(t *testing.T) {
	st := newStack(t, "b.test", "bob@b.test")
	st.withQueue(1, &dnsauth.MockResolver{})
	ctx := context.Background()
	if err := st.db.AddForwarding(ctx, "fwd@b.test", []string{"someone@far.test"}); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(st.dir, "queue", "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, role := range []smtp.Role{smtp.MX, smtp.LMTP} {
		srv, err := smtp.NewServer(smtp.Options{Role: role, Hostname: "mx.b.test", Target: st.router, SpoolDir: st.dir})
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		nc, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c := gosmtp.NewClient(nc)
		if role == smtp.LMTP {
			c = gosmtp.NewClientLMTP(nc)
		}
		err = c.SendMail("sender@far.test", []string{"fwd@b.test"}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
		c.Close()
		var se *gosmtp.SMTPError
		if !errors.As(err, &se) {
			t.Fatalf("%v: SendMail: %v, want an SMTP error", role, err)
		}
		if se.Code != 451 || se.EnhancedCode != (gosmtp.EnhancedCode{4, 3, 0}) ||
			strings.TrimPrefix(se.Message, "<fwd@b.test> ") != "Temporary failure, try again later" {
			t.Errorf("%v: reply %d %v %q, want 451 4.3.0 and the fixed text", role, se.Code, se.EnhancedCode, se.Message)
		}
	}
}

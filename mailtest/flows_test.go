package mailtest

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

func smtpCode(err error) int {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func twoDomains(t *testing.T) (a, b *Server) {
	n := NewNetwork()
	a = NewServer(t, WithDomain("a.test"), WithNetwork(n))
	b = NewServer(t, WithDomain("b.test"), WithNetwork(n))
	a.AddUser("alice@a.test", "pw")
	b.AddUser("bob@b.test", "pw")
	return a, b
}

// A reply travels back the way the message came.
func TestReplyBack(t *testing.T) {
	a, b := twoDomains(t)
	if err := a.Submit("alice@a.test", "pw", "alice@a.test", []string{"bob@b.test"},
		"From: alice@a.test\nTo: bob@b.test\nSubject: question\nMessage-ID: <q1@a.test>\n\nWhy?\n"); err != nil {
		t.Fatal(err)
	}
	q := b.WaitMessage("bob@b.test", "INBOX")
	if err := b.Submit("bob@b.test", "pw", "bob@b.test", []string{"alice@a.test"},
		"From: bob@b.test\nTo: alice@a.test\nSubject: Re: question\nIn-Reply-To: "+q.Header.Get("Message-Id")+"\n\nBecause.\n"); err != nil {
		t.Fatal(err)
	}
	r := a.WaitMessage("alice@a.test", "INBOX")
	if r.Header.Get("In-Reply-To") != "<q1@a.test>" || r.Body != "Because.\r\n" {
		t.Fatalf("reply arrived wrong:\n%s", r.Raw)
	}
}

// An alias of a.test that forwards to b.test: the message leaves through
// the queue and lands at b.
func TestForwardingToExternalDomain(t *testing.T) {
	a, b := twoDomains(t)
	a.AddAlias("info@a.test", "bob@b.test")
	if err := a.SendMX("someone@elsewhere.test", []string{"info@a.test"}, "From: someone@elsewhere.test\nSubject: fwd\n\nPlease forward.\n"); err != nil {
		t.Fatal(err)
	}
	m := b.WaitMessage("bob@b.test", "INBOX")
	if m.Header.Get("Subject") != "fwd" {
		t.Fatalf("forwarded message:\n%s", m.Raw)
	}
}

func TestCatchAllAndSubaddress(t *testing.T) {
	s := NewServer(t, WithDomain("a.test"))
	s.AddUser("alice@a.test", "pw")
	s.AddUser("sink@a.test", "pw")
	s.AddAlias("@a.test", "sink@a.test")
	if err := s.SendMX("x@elsewhere.test", []string{"nobody@a.test"}, "Subject: catch\n\nall\n"); err != nil {
		t.Fatal(err)
	}
	if m := s.WaitMessage("sink@a.test", "INBOX"); m.Header.Get("Subject") != "catch" {
		t.Fatalf("catch-all got:\n%s", m.Raw)
	}
	// The exact user wins over the catch-all, also with a subaddress.
	if err := s.SendMX("x@elsewhere.test", []string{"alice+lists@a.test"}, "Subject: tagged\n\nsub\n"); err != nil {
		t.Fatal(err)
	}
	m := s.WaitMessage("alice@a.test", "INBOX")
	if m.Header.Get("Subject") != "tagged" || !strings.Contains(m.Header.Get("Delivered-To"), "alice") {
		t.Fatalf("subaddressed message:\n%s", m.Raw)
	}
	if n := len(s.Messages("sink@a.test", "INBOX")); n != 1 {
		t.Fatalf("catch-all got the subaddressed message too (%d messages)", n)
	}
}

func TestUnknownUserRefused(t *testing.T) {
	s := NewServer(t, WithDomain("a.test"))
	s.AddUser("alice@a.test", "pw")
	err := s.SendMX("x@elsewhere.test", []string{"nobody@a.test"}, "Subject: x\n\nx\n")
	if smtpCode(err) != 550 {
		t.Fatalf("err = %v, want 550", err)
	}
	err = s.SendMX("x@elsewhere.test", []string{"victim@relay.test"}, "Subject: x\n\nx\n")
	if smtpCode(err) != 554 {
		t.Fatalf("relay attempt: err = %v, want 554", err)
	}
}

func TestOverQuota(t *testing.T) {
	s := NewServer(t, WithDomain("a.test"))
	s.AddUser("alice@a.test", "pw")
	s.SetQuota("alice@a.test", 0, 1)
	if err := s.SendMX("x@elsewhere.test", []string{"alice@a.test"}, "Subject: one\n\n1\n"); err != nil {
		t.Fatal(err)
	}
	err := s.SendMX("x@elsewhere.test", []string{"alice@a.test"}, "Subject: two\n\n2\n")
	if smtpCode(err) != 552 {
		t.Fatalf("err = %v, want 552", err)
	}
	if n := len(s.Messages("alice@a.test", "INBOX")); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
}

// B refuses the recipient for good: A's sender gets a DSN naming the
// recipient and B's reply.
func TestBounceToSender(t *testing.T) {
	a, _ := twoDomains(t)
	if err := a.Submit("alice@a.test", "pw", "alice@a.test", []string{"nobody@b.test"},
		"From: alice@a.test\nTo: nobody@b.test\nSubject: lost\n\nHello?\n"); err != nil {
		t.Fatal(err)
	}
	dsn := a.WaitMessage("alice@a.test", "INBOX")
	raw := string(dsn.Raw)
	if !strings.Contains(dsn.Header.Get("Content-Type"), "multipart/report") ||
		!strings.Contains(raw, "nobody@b.test") || !strings.Contains(raw, "550") {
		t.Fatalf("DSN:\n%s", raw)
	}
}

// eventHandler signals each log record with a given message.
type eventHandler struct {
	msg string
	ch  chan struct{}
}

func (h eventHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h eventHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h eventHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h eventHandler) WithGroup(string) slog.Handler      { return h }

// With B down, A keeps the message and delivers it once B is back.
func TestRetryUntilPeerReturns(t *testing.T) {
	n := NewNetwork()
	deferred := make(chan struct{}, 1)
	a := NewServer(t, WithDomain("a.test"), WithNetwork(n),
		WithLogger(slog.New(eventHandler{msg: "queue: message deferred", ch: deferred})))
	b := NewServer(t, WithDomain("b.test"), WithNetwork(n))
	a.AddUser("alice@a.test", "pw")
	b.AddUser("bob@b.test", "pw")
	b.StopMX()
	if err := a.Submit("alice@a.test", "pw", "alice@a.test", []string{"bob@b.test"}, "From: alice@a.test\nSubject: later\n\nwhen you can\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-deferred:
	case <-time.After(WaitTimeout):
		t.Fatal("the first attempt was never deferred")
	}
	if msgs := a.Messages("alice@a.test", "INBOX"); len(msgs) != 0 {
		t.Fatalf("sender notified while the peer is only down:\n%s", msgs[0].Raw)
	}
	b.StartMX()
	if m := b.WaitMessage("bob@b.test", "INBOX"); m.Header.Get("Subject") != "later" {
		t.Fatalf("got:\n%s", m.Raw)
	}
}

// A domain publishing a null MX (RFC 7505) accepts no mail: the sender is
// told at once.
func TestNullMXBouncesAtOnce(t *testing.T) {
	a := NewServer(t, WithDomain("a.test"))
	a.AddUser("alice@a.test", "pw")
	a.Network.Resolver.AddMX("nomail.test", ".", 0)
	if err := a.Submit("alice@a.test", "pw", "alice@a.test", []string{"x@nomail.test"}, "From: alice@a.test\nSubject: void\n\n.\n"); err != nil {
		t.Fatal(err)
	}
	dsn := a.WaitMessage("alice@a.test", "INBOX")
	if !strings.Contains(string(dsn.Raw), "x@nomail.test") {
		t.Fatalf("DSN:\n%s", dsn.Raw)
	}
}

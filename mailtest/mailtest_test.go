package mailtest

import (
	"errors"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

func TestLocalSubmission(t *testing.T) {
	s := NewServer(t, WithDomain("a.test"))
	s.AddUser("alice@a.test", "alice-pw")
	s.AddUser("bob@a.test", "bob-pw")
	err := s.Submit("alice@a.test", "alice-pw", "alice@a.test", []string{"bob@a.test"},
		"From: alice@a.test\nTo: bob@a.test\nSubject: hello\n\nHi Bob.\n")
	if err != nil {
		t.Fatal(err)
	}
	m := s.WaitMessage("bob@a.test", "INBOX")
	if got := m.Header.Get("Subject"); got != "hello" {
		t.Errorf("Subject = %q", got)
	}
	if m.Body != "Hi Bob.\r\n" {
		t.Errorf("Body = %q", m.Body)
	}
	for _, h := range []string{"Message-Id", "Date", "Received", "Dkim-Signature", "Return-Path", "Delivered-To"} {
		if m.Header.Get(h) == "" {
			t.Errorf("delivered message lacks %s:\n%s", h, m.Raw)
		}
	}
}

func TestWrongPasswordRefused(t *testing.T) {
	s := NewServer(t, WithDomain("a.test"))
	s.AddUser("alice@a.test", "alice-pw")
	err := s.Submit("alice@a.test", "wrong", "alice@a.test", []string{"alice@a.test"}, "Subject: x\n\nx\n")
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 {
		t.Fatalf("err = %v, want 535", err)
	}
}

// Mail between two servers goes through MX lookup on the shared DNS and
// arrives authenticated by every check.
func TestCrossDomainAuthenticated(t *testing.T) {
	n := NewNetwork()
	a := NewServer(t, WithDomain("a.test"), WithNetwork(n))
	b := NewServer(t, WithDomain("b.test"), WithNetwork(n))
	a.AddUser("alice@a.test", "pw")
	b.AddUser("bob@b.test", "pw")
	if err := a.Submit("alice@a.test", "pw", "alice@a.test", []string{"bob@b.test"},
		"From: Alice <alice@a.test>\nTo: bob@b.test\nSubject: across\n\nHello from A.\n"); err != nil {
		t.Fatal(err)
	}
	m := b.WaitMessage("bob@b.test", "INBOX")
	ar := m.Header.Get("Authentication-Results")
	for _, want := range []string{"spf=pass", "dkim=pass", "dmarc=pass", "iprev=pass"} {
		if !strings.Contains(ar, want) {
			t.Errorf("Authentication-Results lacks %s: %q", want, ar)
		}
	}
	t.Logf("Authentication-Results: %s", ar)
	if !strings.HasPrefix(ar, b.Hostname) {
		t.Errorf("authserv-id is not %s: %q", b.Hostname, ar)
	}
}

// A message claiming a p=reject domain's From, sent from a host that
// domain does not authorise, is refused at the end of DATA.
func TestForgedFromRejectedByDMARC(t *testing.T) {
	n := NewNetwork()
	NewServer(t, WithDomain("a.test"), WithNetwork(n), WithDMARCPolicy("reject"))
	b := NewServer(t, WithDomain("b.test"), WithNetwork(n))
	b.AddUser("bob@b.test", "pw")
	err := b.SendMX("ceo@a.test", []string{"bob@b.test"}, "From: ceo@a.test\nTo: bob@b.test\nSubject: wire money\n\nNow.\n")
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 {
		t.Fatalf("err = %v, want 550", err)
	}
	if msgs := b.Messages("bob@b.test", "INBOX"); len(msgs) != 0 {
		t.Fatalf("forged message delivered: %s", msgs[0].Raw)
	}
}

package mailtest

import (
	"crypto/tls"
	"net/smtp"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
)

// The stack's listeners have fullserver's TLS policy: the MX accepts a
// peer that offers only a CBC suite (it would deliver in cleartext
// otherwise), submission, IMAP and POP3 refuse it.
func TestTLSPolicy(t *testing.T) {
	s := NewServer(t)
	s.AddUser("u@example.test", "pw")
	cbcOnly := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}
	starttls := func(addr string) error {
		c, err := smtp.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client.test"); err != nil {
			t.Fatal(err)
		}
		return c.StartTLS(cbcOnly)
	}
	if err := starttls(s.MXAddr); err != nil {
		t.Errorf("MX refused TLS 1.2 with ECDHE-ECDSA-AES128-SHA: %v", err)
	}
	if err := starttls(s.SubmissionAddr); err == nil {
		t.Error("submission accepted TLS 1.2 with ECDHE-ECDSA-AES128-SHA only")
	}
	if c, err := imapclient.DialStartTLS(s.IMAPAddr, &imapclient.Options{TLSConfig: cbcOnly}); err == nil {
		c.Close()
		t.Error("IMAP accepted TLS 1.2 with ECDHE-ECDSA-AES128-SHA only")
	}
	if c, err := dialPOP3(s.POP3Addr, cbcOnly, "u@example.test", "pw"); err == nil {
		c.conn.Close()
		t.Error("POP3 accepted TLS 1.2 with ECDHE-ECDSA-AES128-SHA only")
	}
}

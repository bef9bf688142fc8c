package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
	"github.com/mailagent/mailagent/store"
)

// imapSession authenticates through an Authenticator, as package imap's
// sessions do. It implements only what logging in uses; the embedded nil
// Session stands for the mailbox commands this test never sends.
type imapSession struct {
	imapserver.Session
	a      *Authenticator
	conn   *imapserver.Conn
	authed chan string
}

func (s *imapSession) Close() error { return nil }

func (s *imapSession) Login(username, password string) error { return imapserver.ErrAuthFailed }

func (s *imapSession) AuthenticateMechanisms() []string { return s.a.Mechanisms() }

func (s *imapSession) Authenticate(mech string) (sasl.Server, error) {
	srv, err := s.a.NewSASLServer(context.Background(), mech, s.conn.NetConn().RemoteAddr(), func(u *store.User) error {
		s.authed <- u.Address
		return nil
	})
	if err != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Unsupported mechanism"}
	}
	return imapErrors{srv}, nil
}

// imapErrors maps auth errors to IMAP responses (RFC 5530 codes).
type imapErrors struct{ sasl.Server }

func (m imapErrors) Next(r []byte) ([]byte, bool, error) {
	c, done, err := m.Server.Next(r)
	switch {
	case errors.Is(err, ErrThrottled):
		err = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Too many failed logins"}
	case errors.Is(err, ErrInvalidCredentials):
		err = imapserver.ErrAuthFailed
	case errors.Is(err, ErrAuthzRefused):
		err = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed, Text: "Not authorized"}
	}
	return c, done, err
}

// TestIMAPAuthenticate runs go-imap's imapserver over implicit TLS with
// a SelfSigned certificate and logs in with AUTHENTICATE PLAIN and LOGIN
// from go-imap's client: the session's SessionSASL hands out
// NewSASLServer's servers.
func TestIMAPAuthenticate(t *testing.T) {
	f := saslFixture(t)
	serverTLS, clientTLS := selfSignedPair(t, "imap.example.org")
	authed := make(chan string, 8)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &imapSession{a: f.a, conn: c, authed: authed}, nil, nil
		},
		Caps: imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapSASLIR: {}},
	})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	opts := &imapclient.Options{TLSConfig: clientTLS}

	for _, c := range []struct {
		name     string
		client   sasl.Client
		wantCode imap.ResponseCode // "" for success
	}{
		{"PLAIN", sasl.NewPlainClient("", "alice@example.org", "right"), ""},
		{"LOGIN", sasl.NewLoginClient("alice@example.org", "right"), ""},
		{"PLAIN wrong", sasl.NewPlainClient("", "alice@example.org", "wrong"), imap.ResponseCodeAuthenticationFailed},
		{"PLAIN other authzid", sasl.NewPlainClient("bob@example.org", "alice@example.org", "right"), imap.ResponseCodeAuthorizationFailed},
	} {
		cl, err := imapclient.DialTLS(ln.Addr().String(), opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		err = cl.Authenticate(c.client)
		var ie *imap.Error
		switch {
		case c.wantCode == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantCode == "" && cl.State() != imap.ConnStateAuthenticated:
			t.Errorf("%s: connection state %v after success", c.name, cl.State())
		case c.wantCode == "":
			if u := <-authed; u != "alice@example.org" {
				t.Errorf("%s: session user %q", c.name, u)
			}
		case !errors.As(err, &ie) || ie.Code != c.wantCode:
			t.Errorf("%s: %v, want NO [%s]", c.name, err, c.wantCode)
		}
		cl.Close()
	}
}

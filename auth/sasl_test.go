package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/store"
)

func saslFixture(t testing.TB) *authFixture {
	return newAuthFixture(t, map[string]string{
		"alice@example.org": mustHash(t, "right"),
		"bob@example.org":   mustHash(t, "bob pw"),
	})
}

// exchange runs a SASL server with the given client responses and returns
// the challenges it sent and its final error.
func exchange(t *testing.T, s sasl.Server, responses ...[]byte) (challenges []string, err error) {
	t.Helper()
	for i, r := range responses {
		c, done, err := s.Next(r)
		if err != nil || done {
			if i != len(responses)-1 {
				t.Fatalf("exchange ended after response %d of %d: %v", i+1, len(responses), err)
			}
			return challenges, err
		}
		challenges = append(challenges, string(c))
	}
	t.Fatalf("exchange not finished after %d responses (challenges %q)", len(responses), challenges)
	return nil, nil
}

func TestSASLPlain(t *testing.T) {
	f := saslFixture(t)
	ctx := context.Background()
	remote := tcp("192.0.2.1:1")
	for _, c := range []struct {
		name      string
		responses [][]byte
		wantUser  string
		wantErr   error
		wantChall []string
	}{
		{"initial response", [][]byte{[]byte("\x00alice@example.org\x00right")}, "alice@example.org", nil, nil},
		{"empty challenge first", [][]byte{nil, []byte("\x00alice@example.org\x00right")}, "alice@example.org", nil, []string{""}},
		{"authzid is self", [][]byte{[]byte("ALICE@example.org\x00alice@example.org\x00right")}, "alice@example.org", nil, nil},
		{"wrong password", [][]byte{[]byte("\x00alice@example.org\x00wrong")}, "", ErrInvalidCredentials, nil},
		{"authzid other user", [][]byte{[]byte("bob@example.org\x00alice@example.org\x00right")}, "", ErrAuthzRefused, nil},
	} {
		var got *store.User
		s, err := f.a.NewSASLServer(ctx, "plain", remote, func(u *store.User) error { got = u; return nil })
		if err != nil {
			t.Fatal(err)
		}
		chall, err := exchange(t, s, c.responses...)
		if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.wantErr)
		}
		if len(chall) != len(c.wantChall) {
			t.Errorf("%s: challenges %q, want %q", c.name, chall, c.wantChall)
		}
		if (got == nil && c.wantUser != "") || (got != nil && got.Address != c.wantUser) {
			t.Errorf("%s: done called with %+v, want %q", c.name, got, c.wantUser)
		}
	}
	// The refused authorization identity was decided before any
	// password check: nothing counted against the client but the one
	// wrong password.
	att, err := f.a.throttle.Begin(remote, "zz")
	if err != nil {
		t.Fatal(err)
	}
	if d := att.Fail(); d != 2*f.a.throttle.cfg.BaseDelay {
		t.Errorf("failures counted: next delay %v, want the second failure's", d)
	}
	// A malformed response is refused as such: a failed login every
	// protocol counts, not a temporary failure.
	for _, resp := range []string{"no separators", "", "a\x00b", "\x00a\x00b\x00c"} {
		s, _ := f.a.NewSASLServer(ctx, MechPlain, remote, nil)
		if _, _, err := s.Next([]byte(resp)); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("PLAIN response %q: %v, want ErrMalformedResponse", resp, err)
		}
		if _, _, err := s.Next([]byte("\x00alice@example.org\x00right")); !errors.Is(err, ErrMalformedResponse) || !errors.Is(err, sasl.ErrUnexpectedClientResponse) {
			t.Errorf("PLAIN response after the end: %v", err)
		}
	}
}

func TestSASLAuthorize(t *testing.T) {
	f := saslFixture(t)
	f.a.Authorize = func(ctx context.Context, u *store.User, authzid string) (*store.User, error) {
		if u.Address != "alice@example.org" {
			return nil, errors.New("not a master user")
		}
		return f.store.LookupUser(ctx, authzid)
	}
	ctx := context.Background()
	var got *store.User
	s, _ := f.a.NewSASLServer(ctx, MechPlain, nil, func(u *store.User) error { got = u; return nil })
	if _, err := exchange(t, s, []byte("bob@example.org\x00alice@example.org\x00right")); err != nil || got == nil || got.Address != "bob@example.org" {
		t.Fatalf("alice acting as bob: %v, user %+v", err, got)
	}
	s, _ = f.a.NewSASLServer(ctx, MechPlain, nil, nil)
	if _, err := exchange(t, s, []byte("alice@example.org\x00bob@example.org\x00bob pw")); !errors.Is(err, ErrAuthzRefused) {
		t.Errorf("bob acting as alice: %v, want ErrAuthzRefused", err)
	}
}

func TestSASLLogin(t *testing.T) {
	f := saslFixture(t)
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		responses [][]byte
		wantChall []string
		wantErr   error
	}{
		{"prompted", [][]byte{nil, []byte("alice@example.org"), []byte("right")}, []string{"Username:", "Password:"}, nil},
		{"empty initial response", [][]byte{{}, []byte("alice@example.org"), []byte("right")}, []string{"Username:", "Password:"}, nil},
		{"username as initial response", [][]byte{[]byte("alice@example.org"), []byte("right")}, []string{"Password:"}, nil},
		{"wrong password", [][]byte{nil, []byte("alice@example.org"), []byte("wrong")}, []string{"Username:", "Password:"}, ErrInvalidCredentials},
		{"overlong username", [][]byte{nil, make([]byte, 300)}, []string{"Username:"}, ErrMalformedResponse},
	} {
		var got *store.User
		s, err := f.a.NewSASLServer(ctx, "LOGIN", tcp("192.0.2.1:1"), func(u *store.User) error { got = u; return nil })
		if err != nil {
			t.Fatal(err)
		}
		chall, err := exchange(t, s, c.responses...)
		if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.wantErr)
		}
		if len(chall) != len(c.wantChall) || (len(chall) > 0 && chall[0] != c.wantChall[0]) {
			t.Errorf("%s: challenges %q, want %q", c.name, chall, c.wantChall)
		}
		if c.wantErr == nil && (got == nil || got.Address != "alice@example.org") {
			t.Errorf("%s: done called with %+v", c.name, got)
		}
		if _, _, err := s.Next([]byte("more")); err == nil {
			t.Errorf("%s: response after the end accepted", c.name)
		}
	}
}

func TestSASLDoneErrorAndUnknownMechanism(t *testing.T) {
	f := saslFixture(t)
	refuse := errors.New("submission not allowed for this user")
	s, _ := f.a.NewSASLServer(context.Background(), MechPlain, nil, func(*store.User) error { return refuse })
	if _, err := exchange(t, s, []byte("\x00alice@example.org\x00right")); !errors.Is(err, refuse) {
		t.Errorf("done's error: got %v", err)
	}
	if _, err := f.a.NewSASLServer(context.Background(), "CRAM-MD5", nil, nil); !errors.Is(err, ErrUnknownMechanism) {
		t.Errorf("CRAM-MD5: %v, want ErrUnknownMechanism", err)
	}
	if m := f.a.Mechanisms(); len(m) != 2 || m[0] != "PLAIN" || m[1] != "LOGIN" {
		t.Errorf("Mechanisms() = %q", m)
	}
}

// smtpBackend is a go-smtp backend whose sessions authenticate through an
// Authenticator, as package smtp's submission server does, mapping
// errors to the replies RFC 4954 names.
type smtpBackend struct {
	a    *Authenticator
	mu   sync.Mutex
	user string
}

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{b: b, remote: c.Conn().RemoteAddr()}, nil
}

type smtpSession struct {
	b      *smtpBackend
	remote net.Addr
}

func (s *smtpSession) AuthMechanisms() []string { return s.b.a.Mechanisms() }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	srv, err := s.b.a.NewSASLServer(context.Background(), mech, s.remote, func(u *store.User) error {
		s.b.mu.Lock()
		s.b.user = u.Address
		s.b.mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return smtpErrors{srv}, nil
}

// smtpErrors maps auth errors to SMTP replies.
type smtpErrors struct{ sasl.Server }

func (m smtpErrors) Next(r []byte) ([]byte, bool, error) {
	c, done, err := m.Server.Next(r)
	switch {
	case errors.Is(err, ErrThrottled):
		err = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many failed logins"}
	case errors.Is(err, ErrInvalidCredentials), errors.Is(err, ErrAuthzRefused):
		err = smtp.ErrAuthFailed
	}
	return c, done, err
}

func (s *smtpSession) Reset()                               {}
func (s *smtpSession) Logout() error                        { return nil }
func (s *smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *smtpSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (s *smtpSession) authedUser(b *smtpBackend) (user string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.user
}

// TestSMTPSubmissionAuth runs go-smtp over STARTTLS with a self-signed
// certificate served by a CertReloader, and authenticates with go-sasl's
// PLAIN and LOGIN clients: the replies on the wire are 235 for the right
// password and 535 for a wrong one.
func TestSMTPSubmissionAuth(t *testing.T) {
	f := saslFixture(t)
	serverTLS, clientTLS := selfSignedPair(t, "mail.example.org")
	be := &smtpBackend{a: f.a}
	srv := smtp.NewServer(be)
	srv.Domain = "mail.example.org"
	srv.TLSConfig = serverTLS
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for _, c := range []struct {
		name     string
		client   sasl.Client
		wantCode int
	}{
		{"PLAIN", sasl.NewPlainClient("", "alice@example.org", "right"), 0},
		{"LOGIN", sasl.NewLoginClient("alice@example.org", "right"), 0},
		{"PLAIN wrong", sasl.NewPlainClient("", "alice@example.org", "wrong"), 535},
		{"PLAIN other authzid", sasl.NewPlainClient("bob@example.org", "alice@example.org", "right"), 535},
	} {
		cl, err := smtp.DialStartTLS(ln.Addr().String(), clientTLS)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		err = cl.Auth(c.client)
		if state, ok := cl.TLSConnectionState(); !ok || state.Version < tls.VersionTLS12 {
			t.Fatalf("%s: not on TLS 1.2+: %+v", c.name, state)
		}
		var se *smtp.SMTPError
		switch {
		case c.wantCode == 0 && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantCode != 0 && (!errors.As(err, &se) || se.Code != c.wantCode):
			t.Errorf("%s: %v, want reply %d", c.name, err, c.wantCode)
		}
		cl.Close()
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.user != "alice@example.org" {
		t.Errorf("session user %q", be.user)
	}
}

// selfSignedPair returns a server configuration serving a SelfSigned
// certificate for host through a CertReloader, and a client configuration
// that trusts exactly that certificate.
func selfSignedPair(t *testing.T, host string) (server, client *tls.Config) {
	t.Helper()
	certFile, keyFile, err := SelfSigned(t.TempDir(), host)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewCertReloader(certFile, keyFile, CertReloaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("no certificate in %s", certFile)
	}
	return TLSConfig(r.GetCertificate), &tls.Config{RootCAs: roots, ServerName: host}
}

// TLS below 1.2 is refused by TLSConfig.
func TestTLSConfigMinVersion(t *testing.T) {
	certFile, keyFile, err := SelfSigned(t.TempDir(), "mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewCertReloader(certFile, keyFile, CertReloaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", TLSConfig(r.GetCertificate))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	old := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}
	if c, err := tls.Dial("tcp", ln.Addr().String(), old); err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	c.Close()
}

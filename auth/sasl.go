package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/mailagent/mailagent/store"
)

// The SASL mechanism names served.
const (
	MechPlain = sasl.Plain // RFC 4616
	MechLogin = sasl.Login // draft-murchison-sasl-login
)

// ErrUnknownMechanism is returned by NewSASLServer for a mechanism it
// does not serve.
var ErrUnknownMechanism = errors.New("auth: unknown SASL mechanism")

// ErrMalformedResponse is returned by a SASL server for a client response
// that breaks its mechanism's syntax.
var ErrMalformedResponse = errors.New("auth: malformed SASL response")

// maxSASLField bounds each field of a client response (RFC 4616 allows
// 255 octets per field; passwords get MaxPasswordLen).
const maxSASLField = 255

// Mechanisms returns the SASL mechanisms NewSASLServer serves, in the
// order to advertise them.
func (a *Authenticator) Mechanisms() []string {
	return []string{MechPlain, MechLogin}
}

// NewSASLServer returns the server side of mechanism mech (case
// insensitive) for one authentication exchange of a client at remote.
// After the credentials check out, done is called with the user the
// session acts as, and its error, if any, fails the exchange; errors of
// Authenticate are returned by the server's Next unchanged, so protocol
// servers can tell a throttled client (ErrThrottled) from a wrong password
// (ErrInvalidCredentials) from a temporary failure.
//
// It fits go-smtp's AuthSession.Auth and package imap's AUTHENTICATE.
// Callers must offer it only over TLS: both mechanisms send the password
// in the clear.
func (a *Authenticator) NewSASLServer(ctx context.Context, mech string, remote net.Addr, done func(*store.User) error) (sasl.Server, error) {
	login := func(authzid, username, password string) error {
		if len(username) > maxSASLField || len(authzid) > maxSASLField || len(password) > MaxPasswordLen {
			return ErrMalformedResponse
		}
		if authzid != "" && !strings.EqualFold(authzid, username) && a.Authorize == nil {
			return ErrAuthzRefused
		}
		u, err := a.Authenticate(ctx, username, password, remote)
		if err != nil {
			return err
		}
		if authzid != "" && !strings.EqualFold(authzid, username) && !strings.EqualFold(authzid, u.Address) {
			if u, err = a.Authorize(ctx, u, authzid); err != nil {
				return fmt.Errorf("%w: %w", ErrAuthzRefused, err)
			}
			if u == nil {
				return ErrAuthzRefused
			}
		}
		if done != nil {
			return done(u)
		}
		return nil
	}
	switch strings.ToUpper(mech) {
	case MechPlain:
		return &plainServer{authenticate: login}, nil
	case MechLogin:
		return &loginServer{authenticate: login}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownMechanism, mech)
}

// errUnexpectedResponse is a response after the exchange ended: a
// malformed response, and go-sasl's error for it.
var errUnexpectedResponse = fmt.Errorf("%w: %w", ErrMalformedResponse, sasl.ErrUnexpectedClientResponse)

// plainServer is the server side of PLAIN (RFC 4616). go-sasl's own
// answers a response without its two NULs with an error of its own,
// which every protocol server took for a temporary failure (SMTP 454,
// IMAP NO [UNAVAILABLE], ManageSieve NO (TRYLATER)) and did not count:
// here it is ErrMalformedResponse, a failed login like a wrong password.
type plainServer struct {
	authenticate func(authzid, username, password string) error
	done         bool
}

// Next implements sasl.Server.
func (s *plainServer) Next(response []byte) (challenge []byte, done bool, err error) {
	if s.done {
		return nil, true, errUnexpectedResponse
	}
	if response == nil {
		// No initial response: an empty challenge asks for it.
		return []byte{}, false, nil
	}
	s.done = true
	authzid, rest, ok1 := strings.Cut(string(response), "\x00")
	username, password, ok2 := strings.Cut(rest, "\x00")
	if !ok1 || !ok2 || strings.Contains(password, "\x00") {
		return nil, true, ErrMalformedResponse
	}
	return nil, true, s.authenticate(authzid, username, password)
}

// loginServer is the server side of LOGIN: the server prompts
// "Username:" and "Password:", and the client answers each. An initial
// response, which many clients send with AUTH LOGIN, is the username.
type loginServer struct {
	authenticate func(authzid, username, password string) error
	state        loginState
	username     string
}

type loginState int

const (
	loginStart loginState = iota
	loginWantUsername
	loginWantPassword
	loginDone
)

// Next implements sasl.Server.
func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.state {
	case loginStart:
		s.state = loginWantUsername
		if len(response) == 0 {
			return []byte("Username:"), false, nil
		}
		return s.Next(response)
	case loginWantUsername:
		if len(response) > maxSASLField {
			s.state = loginDone
			return nil, true, ErrMalformedResponse
		}
		s.username = string(response)
		s.state = loginWantPassword
		return []byte("Password:"), false, nil
	case loginWantPassword:
		s.state = loginDone
		return nil, true, s.authenticate("", s.username, string(response))
	}
	return nil, true, errUnexpectedResponse
}

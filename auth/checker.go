package auth

import (
	"context"
	"net"

	"github.com/emersion/go-sasl"
	"github.com/mailagent/mailagent/store"
)

// Checker is what a mail access server (package imap and pop3) asks of
// the login service: a plain user name and password check (IMAP LOGIN,
// POP3 USER/PASS) and SASL exchanges (AUTHENTICATE, AUTH). *Authenticator
// satisfies it; a program may put its own in front of it (a proxy that
// sends users elsewhere, a test double). Errors are classified with
// errors.Is against ErrInvalidCredentials, ErrAuthzRefused,
// ErrMalformedResponse and ErrThrottled; each server documents the reply
// it gives for each.
type Checker interface {
	// Authenticate checks a user name and password from remote.
	Authenticate(ctx context.Context, username, password string, remote net.Addr) (*store.User, error)
	// Mechanisms lists the SASL mechanisms to advertise.
	Mechanisms() []string
	// NewSASLServer starts a SASL exchange; done is called with the user
	// once the credentials check out.
	NewSASLServer(ctx context.Context, mech string, remote net.Addr, done func(*store.User) error) (sasl.Server, error)
}

var _ Checker = (*Authenticator)(nil)

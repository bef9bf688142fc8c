package imap

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// session is one connection's logged-in state: the user, their Maildir
// and the selected mailbox.
type session struct {
	srv *Server
	nc  *conn
	ctx context.Context // Server.ctx

	user *store.User
	md   *maildir.Maildir

	mu  sync.Mutex // guards sel against Server's goroutines
	sel *selection

	notify *notifier // NOTIFY SET (notify.go)
}

// Close ends the session: the selected mailbox, the Maildir and the
// user's connection count.
func (s *session) Close() error {
	if s.md != nil {
		s.stopNotify()
	}
	s.unselect()
	if s.md != nil {
		s.md = nil
		s.srv.removeUser(s.user.Address)
	}
	return nil
}

// errPrivacy refuses passwords before TLS.
var errPrivacy = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired, Text: "Use TLS before sending a password"}

// cmdLogin serves LOGIN, refused before TLS unless AllowInsecureAuth.
func (c *conn) cmdLogin(cmd *imapwire.Command) (okStatus, error) {
	if !c.authAllowed() {
		return okStatus{}, errPrivacy
	}
	a := cmd.Args.(*imapwire.Login)
	u, err := c.srv.opts.Authenticator.Authenticate(c.srv.ctx, a.Username, a.Password, c.raw.RemoteAddr())
	if err != nil {
		return okStatus{}, c.authError(a.Username, err)
	}
	return c.loggedIn(u, "LOGIN")
}

// cmdAuthenticate serves AUTHENTICATE, with SASL-IR (RFC 4959).
func (c *conn) cmdAuthenticate(cmd *imapwire.Command) (okStatus, error) {
	if !c.authAllowed() {
		return okStatus{}, errPrivacy
	}
	a := cmd.Args.(*imapwire.Authenticate)
	var user *store.User
	srv, err := c.srv.opts.Authenticator.NewSASLServer(c.srv.ctx, a.Mechanism, c.raw.RemoteAddr(), func(u *store.User) error {
		user = u
		return nil
	})
	if err != nil {
		return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Unsupported authentication mechanism"}
	}
	resp := a.InitialResponse
	if !a.HasInitial {
		resp = nil
	}
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			return okStatus{}, c.authError("", err)
		}
		if done {
			break
		}
		c.w.Continue(base64.StdEncoding.EncodeToString(challenge))
		if err := c.flush(); err != nil {
			return okStatus{}, errSilent
		}
		r, cancelled, err := c.r.ReadSASLResponse()
		c.startWrite()
		var e *imapwire.Error
		switch {
		case errors.As(err, &e) && e.Close:
			// An over-long line: what follows it is not read.
			c.bye = "Command or literal too large, closing the connection"
			return okStatus{}, &imap.Error{Type: e.Type, Code: e.Code, Text: e.Text}
		case errors.As(err, &e):
			// Not base64: BAD, as RFC 9051 says, and a failed login all
			// the same, so that it is no free retry.
			if refusal := c.authError("", auth.ErrMalformedResponse); c.bye != "" {
				return okStatus{}, refusal
			}
			return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Invalid SASL response"}
		case err != nil:
			c.readFailed(err, false)
			c.state = stateLogout
			return okStatus{}, errSilent
		case cancelled:
			return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "AUTHENTICATE cancelled"}
		}
		resp = r
	}
	if user == nil {
		return okStatus{}, c.authError("", auth.ErrInvalidCredentials)
	}
	return c.loggedIn(user, strings.ToUpper(a.Mechanism))
}

// authError answers a failed login: NO [AUTHENTICATIONFAILED], and BYE
// when the client is throttled or has failed too often on this
// connection.
func (c *conn) authError(username string, err error) error {
	switch {
	case errors.Is(err, auth.ErrThrottled):
		c.srv.log.Info("imap: login throttled", "session", c.id, "remote", c.remote(), "user", username)
		c.bye = "Too many failed logins, try again later"
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Too many failed logins"}
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrAuthzRefused),
		errors.Is(err, auth.ErrMalformedResponse):
		c.failures++
		if int(c.failures) >= c.srv.opts.MaxAuthFailures {
			c.bye = "Too many failed logins"
		}
		if errors.Is(err, auth.ErrAuthzRefused) {
			// RFC 5530: the credentials were right, the identity asked
			// for is not theirs to use.
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed, Text: "Not authorized to act as that user"}
		}
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Authentication failed"}
	default:
		c.srv.log.Warn("imap: login failed", "session", c.id, "remote", c.remote(), "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Authentication temporarily unavailable"}
	}
}

// loggedIn opens the user's Maildir after a successful login; method is
// how u authenticated ("LOGIN", else the SASL mechanism).
func (c *conn) loggedIn(u *store.User, method string) (okStatus, error) {
	s := &session{srv: c.srv, nc: c, ctx: c.srv.ctx}
	li, ok := c.srv.addUser(u)
	if !ok {
		return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Too many connections for this user"}
	}
	md, err := c.srv.userMaildir(s.ctx, li, u.Maildir)
	if err != nil {
		c.srv.removeUser(u.Address)
		c.srv.log.Error("imap: opening maildir", "session", c.id, "user", u.Address, "err", err)
		return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Mailbox unavailable"}
	}
	if want := (maildir.Quota{Bytes: u.QuotaBytes, Messages: u.QuotaMessages}); want != (maildir.Quota{}) {
		if q, err := md.Quota(s.ctx); err == nil && q.Limit != want {
			if err := md.SetQuota(s.ctx, want); err != nil {
				c.srv.log.Warn("imap: setting quota", "session", c.id, "user", u.Address, "err", err)
			}
		}
	}
	s.user, s.md = li.user, md
	c.sess = s
	c.state = stateAuth
	c.mu.Lock()
	c.clock.LoggedIn()
	c.mu.Unlock()
	// The same fields as POP3's login line (see the README's log fields).
	c.srv.log.Info("imap: login", "session", c.id, "remote", c.remote(), "user", u.Address, "tls", c.isTLS, "method", method)
	return okStatus{code: "CAPABILITY " + c.capabilities(), text: "Logged in"}, nil
}

// cmdNamespace reports the single personal namespace of Maildir++.
func (c *conn) cmdNamespace(cmd *imapwire.Command) (okStatus, error) {
	c.w.Untagged()
	c.w.Atom(`NAMESPACE ((`)
	c.w.String(c.srv.opts.NamespacePrefix)
	c.w.Atom(` "` + string(maildir.Delimiter) + `")) NIL NIL`)
	c.w.End()
	return okStatus{}, nil
}

// mapError turns storage errors into IMAP responses with RFC 5530 codes.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return err
	}
	no := func(code imap.ResponseCode, text string) error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	switch {
	case errors.Is(err, maildir.ErrInvalidName):
		return no(imap.ResponseCodeCannot, "Invalid mailbox name")
	case errors.Is(err, maildir.ErrNoFolder):
		return no(imap.ResponseCodeNonExistent, "No such mailbox")
	case errors.Is(err, maildir.ErrFolderExists):
		return no(imap.ResponseCodeAlreadyExists, "Mailbox already exists")
	case errors.Is(err, maildir.ErrInbox):
		return no(imap.ResponseCodeCannot, "Not permitted on INBOX")
	case errors.Is(err, maildir.ErrOverQuota):
		return no(imap.ResponseCodeOverQuota, "Quota exceeded")
	case errors.Is(err, maildir.ErrTooLarge):
		return no(imap.ResponseCodeTooBig, "Message too large")
	case errors.Is(err, maildir.ErrTooManyFolders):
		return no(imap.ResponseCodeLimit, "Too many mailboxes")
	case errors.Is(err, maildir.ErrFolderTooDeep):
		return no(imap.ResponseCodeLimit, "Mailbox hierarchy too deep")
	case errors.Is(err, maildir.ErrTooManySubscriptions):
		return no(imap.ResponseCodeLimit, "Too many subscriptions")
	case errors.Is(err, maildir.ErrTooManyKeywords):
		return no(imap.ResponseCodeLimit, "Too many keywords in mailbox")
	case errors.Is(err, maildir.ErrInvalidFlag):
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Invalid flag"}
	case errors.Is(err, context.Canceled), errors.Is(err, maildir.ErrClosed):
		return no(imap.ResponseCodeUnavailable, "Server shutting down")
	}
	return err
}

package imap

import (
	"context"
	"errors"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// session is one connection's state above the protocol engine.
type session struct {
	srv *Server
	nc  *conn
	ctx context.Context // Server.ctx

	user *store.User
	md   *maildir.Maildir

	mu  sync.Mutex // guards sel against IDLE's goroutine
	sel *selection
}

var (
	_ imapserver.SessionIMAP4rev2   = (*session)(nil)
	_ imapserver.SessionSASL        = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
	_ imapserver.SessionNamespace   = (*session)(nil)
	_ imapserver.SessionMove        = (*session)(nil)
)

func (s *Server) newSession(ic *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	var c *conn
	switch nc := ic.NetConn().(type) {
	case *tlsConn:
		c = nc.c
	case *conn:
		c = nc
	}
	if c == nil {
		return nil, nil, errors.New("imap: connection not accepted by this server")
	}
	c.mu.Lock()
	c.ic = ic
	c.mu.Unlock()
	return &session{srv: s, nc: c, ctx: s.ctx}, nil, nil
}

// Close ends the session: the selected mailbox, the Maildir and the
// user's connection count.
func (s *session) Close() error {
	s.unselect()
	if s.md != nil {
		s.md = nil
		s.srv.removeUser(s.user.Address)
	}
	return nil
}

// Login serves the LOGIN command; imapserver has refused it already
// before TLS unless AllowInsecureAuth is set.
func (s *session) Login(username, password string) error {
	u, err := s.srv.opts.Authenticator.Authenticate(s.ctx, username, password, s.nc.RemoteAddr())
	if err != nil {
		return s.authError(username, err)
	}
	return s.start(u)
}

// AuthenticateMechanisms lists the SASL mechanisms offered.
func (s *session) AuthenticateMechanisms() []string {
	return s.srv.opts.Authenticator.Mechanisms()
}

// Authenticate serves AUTHENTICATE (with SASL-IR, which imapserver
// parses).
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	srv, err := s.srv.opts.Authenticator.NewSASLServer(s.ctx, mech, s.nc.RemoteAddr(), s.start)
	if err != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Unsupported authentication mechanism"}
	}
	return saslServer{srv, s}, nil
}

// saslServer maps the errors of a SASL exchange to IMAP responses.
type saslServer struct {
	sasl.Server
	s *session
}

func (ss saslServer) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := ss.Server.Next(resp)
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) {
			return nil, false, err
		}
		return nil, false, ss.s.authError("", err)
	}
	return ch, done, nil
}

// authError answers a failed login: NO [AUTHENTICATIONFAILED], and BYE
// when the client is throttled or has failed too often on this
// connection.
func (s *session) authError(username string, err error) error {
	switch {
	case errors.Is(err, auth.ErrThrottled):
		s.srv.log.Info("imap: login throttled", "remote", s.nc.RemoteAddr().String(), "user", username)
		s.nc.byeAfterReply("Too many failed logins, try again later")
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Too many failed logins"}
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrAuthzRefused),
		errors.Is(err, auth.ErrMalformedResponse), errors.Is(err, imapserver.ErrAuthFailed):
		s.nc.failures++
		if int(s.nc.failures) >= s.srv.opts.MaxAuthFailures {
			s.nc.byeAfterReply("Too many failed logins")
		}
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Authentication failed"}
	default:
		s.srv.log.Warn("imap: login failed", "remote", s.nc.RemoteAddr().String(), "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Authentication temporarily unavailable"}
	}
}

// start opens the user's Maildir after a successful login.
func (s *session) start(u *store.User) error {
	li, ok := s.srv.addUser(u)
	if !ok {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Too many connections for this user"}
	}
	md, err := s.srv.userMaildir(s.ctx, li, u.Maildir)
	if err != nil {
		s.srv.removeUser(u.Address)
		s.srv.log.Error("imap: opening maildir", "user", u.Address, "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Mailbox unavailable"}
	}
	if want := (maildir.Quota{Bytes: u.QuotaBytes, Messages: u.QuotaMessages}); want != (maildir.Quota{}) {
		if q, err := md.Quota(s.ctx); err == nil && q.Limit != want {
			if err := md.SetQuota(s.ctx, want); err != nil {
				s.srv.log.Warn("imap: setting quota", "user", u.Address, "err", err)
			}
		}
	}
	s.user, s.md = li.user, md
	s.nc.setAuthed(true)
	s.srv.log.Info("imap: login", "remote", s.nc.RemoteAddr().String(), "user", u.Address)
	return nil
}

// AppendLimit is advertised as APPENDLIMIT and enforced on APPEND.
func (s *session) AppendLimit() uint32 { return s.srv.opts.AppendLimit }

// Namespace reports the single personal namespace of Maildir++.
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: maildir.Delimiter}}}, nil
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
	case errors.Is(err, maildir.ErrTooManyKeywords):
		return no(imap.ResponseCodeLimit, "Too many keywords in mailbox")
	case errors.Is(err, maildir.ErrInvalidFlag):
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Invalid flag"}
	case errors.Is(err, context.Canceled), errors.Is(err, maildir.ErrClosed):
		return no(imap.ResponseCodeUnavailable, "Server shutting down")
	}
	return err
}

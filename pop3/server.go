package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/internal/connlimit"
	"github.com/mailagent/mailagent/internal/conntrack"
	"github.com/mailagent/mailagent/maildir"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Close or
// Shutdown.
var ErrServerClosed = errors.New("pop3: server closed")

// Authenticator checks logins: auth.Checker, which *auth.Authenticator
// satisfies. Errors are classified with errors.Is against auth's
// ErrInvalidCredentials, ErrAuthzRefused and ErrMalformedResponse
// ("-ERR [AUTH]") and ErrThrottled ("-ERR [SYS/TEMP]", then the connection is closed); any
// other error is a temporary failure ("-ERR [SYS/TEMP]").
type Authenticator = auth.Checker

// Options configure a Server. Zero values give the defaults noted.
type Options struct {
	// Network and Addr are what ListenAndServe listens on: "tcp" (the
	// default) and an address (default ":110", or ":995" with
	// ImplicitTLS).
	Network, Addr string
	// Hostname is named in the greeting; default os.Hostname().
	Hostname string
	// Maildirs is where users' Maildirs are (store.User.Maildir is
	// relative to its base). Required.
	Maildirs *maildir.Store
	// Authenticator checks logins. Required.
	Authenticator Authenticator
	// TLSConfig enables STLS, or TLS from the first byte with
	// ImplicitTLS (and for ServeTLS).
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// AllowInsecureAuth accepts USER/PASS and AUTH on a connection
	// without TLS. Passwords then cross the network in the clear; it is
	// meant for loopback and for networks that are protected otherwise.
	AllowInsecureAuth bool
	// UIDLFormat is Dovecot's pop3_uidl_format: the unique-id listing of
	// a message. Default "%08Xu%08Xv", Dovecot 2.3's. It may use %u (the
	// IMAP UID), %v (UIDVALIDITY), %f and %g (the Maildir base file
	// name), %% and Dovecot's width, zero-padding and L, U and X
	// modifiers; %m (a digest of the header) is not supported.
	UIDLFormat string
	// IdleTimeout bounds the wait for a whole command (or SASL
	// response) line, from the moment the server is ready for it to its
	// CRLF however its bytes are spread (default 10 minutes, RFC 1939's
	// minimum autologout timer): a client sending a byte now and then
	// does not keep its connection. The session ends with "-ERR
	// Disconnected for inactivity."; nothing is deleted.
	// WriteTimeout bounds every write of a reply (default 1 minute).
	IdleTimeout, WriteTimeout time.Duration
	// LoginTimeout bounds the time from connect to a successful login,
	// however many commands (CAPA, NOOP, failed attempts) come meanwhile
	// (default 60 seconds); the client is told "-ERR Disconnected: no
	// login within N seconds." and the connection closed. Negative turns
	// it off.
	LoginTimeout time.Duration
	// MaxConns bounds concurrent connections (default 1000) and
	// MaxConnsPerIP those from one client network (default 20): one
	// IPv4 address, or one IPv6 /64, since a host picks its addresses
	// within its /64 at will. A connection over a limit is told
	// "-ERR [SYS/TEMP]" and closed.
	MaxConns, MaxConnsPerIP int
	// ConnLimiter, when set, counts the connections in place of
	// MaxConns and MaxConnsPerIP, so that several servers share one
	// limit: examples/fullserver and mailtest give every listener of
	// the process one. Any value with the method
	// Acquire(net.Addr) (release func(), err error) will do; an error
	// refuses the connection.
	ConnLimiter connlimit.Counter
	// MaxAuthFailures ends a connection after that many failed logins
	// on it (default 3); the Authenticator's throttle slows and locks
	// out guessing across connections. Every failed login but the last
	// is answered "-ERR [AUTH] Authentication failed.", Dovecot's reply;
	// the last one "-ERR [AUTH] Authentication failed; too many
	// failures, closing the connection.", and the server then closes the
	// connection. The code stays RFC 3206's AUTH, not SYS/TEMP: the
	// cause is the credentials, and a client that sees AUTH asks its
	// user for the password again rather than retrying the same one
	// later. (Dovecot 2.3 keeps the connection open after any number of
	// failures and only delays its replies.)
	MaxAuthFailures int
	// Expire, when set, is advertised as RFC 2449's EXPIRE capability:
	// "NEVER" or a number of days after which retrieved mail may be
	// deleted by the site's policy. The server itself deletes nothing.
	Expire string
	// LoginDelay, when set, is advertised as RFC 2449's LOGIN-DELAY (in
	// seconds) and enforced by this Server, which remembers logins in
	// memory (not across processes): a user logging in again sooner
	// gets "-ERR [LOGIN-DELAY]".
	LoginDelay time.Duration
	// Implementation is advertised as RFC 2449's IMPLEMENTATION
	// capability; default "mailagent". "-" advertises nothing.
	Implementation string
	// Logger receives session logs; nil discards.
	Logger *slog.Logger

	// now is the clock of LOGIN-DELAY, time.Now if nil; the package's
	// tests set it.
	now func() time.Time
}

// Server is a POP3 server. Like net/http's Server it can serve several
// listeners at once (plain ones with STLS and implicit-TLS ones), and
// Shutdown ends it gracefully.
type Server struct {
	opts Options
	log  *slog.Logger
	uidl uidlFormat

	track *conntrack.Tracker[*conn]

	mu        sync.Mutex
	lastLogin map[string]time.Time // LOGIN-DELAY bookkeeping
}

// maxLoginDelayEntries bounds the LOGIN-DELAY memory; older entries are
// dropped first.
const maxLoginDelayEntries = 100_000

// NewServer returns a Server for opts.
func NewServer(opts Options) (*Server, error) {
	if opts.Maildirs == nil || opts.Authenticator == nil {
		return nil, errors.New("pop3: Options.Maildirs and Options.Authenticator are required")
	}
	if opts.ImplicitTLS && opts.TLSConfig == nil {
		return nil, errors.New("pop3: ImplicitTLS requires TLSConfig")
	}
	if opts.Expire != "" && opts.Expire != "NEVER" && strings.Trim(opts.Expire, "0123456789") != "" {
		return nil, fmt.Errorf("pop3: Options.Expire %q is neither NEVER nor a number of days", opts.Expire)
	}
	if opts.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("pop3: hostname: %w", err)
		}
		opts.Hostname = h
	}
	setDefault(&opts.UIDLFormat, DefaultUIDLFormat)
	uf, err := parseUIDLFormat(opts.UIDLFormat)
	if err != nil {
		return nil, err
	}
	setDefault(&opts.IdleTimeout, 10*time.Minute)
	setDefault(&opts.WriteTimeout, time.Minute)
	setDefault(&opts.LoginTimeout, time.Minute)
	setDefault(&opts.MaxConns, 1000)
	setDefault(&opts.MaxConnsPerIP, 20)
	setDefault(&opts.MaxAuthFailures, 3)
	setDefault(&opts.Implementation, "mailagent")
	if opts.now == nil {
		opts.now = time.Now
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		uidl:      uf,
		lastLogin: map[string]time.Time{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.track = conntrack.New[*conn](connlimit.Or(opts.ConnLimiter, opts.MaxConns, opts.MaxConnsPerIP), s.log, ErrServerClosed)
	return s, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Serve accepts connections on l until Close or Shutdown, then returns
// ErrServerClosed. Connections speak TLS from the first byte when
// Options.ImplicitTLS is set, and are offered STLS otherwise (when
// Options.TLSConfig is set).
func (s *Server) Serve(l net.Listener) error {
	return s.serve(l, s.opts.ImplicitTLS)
}

// ServeTLS is Serve with TLS from the first byte (POP3S, port 995),
// whatever Options.ImplicitTLS says. Options.TLSConfig is required.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.opts.TLSConfig == nil {
		return errors.New("pop3: ServeTLS requires Options.TLSConfig")
	}
	return s.serve(l, true)
}

func (s *Server) serve(l net.Listener, implicitTLS bool) error {
	return s.track.Serve(l, func(nc net.Conn) {
		c, err := s.track.Admit(nc, func() *conn { return newConn(s, nc) })
		if err != nil {
			reason := "Too many connections, try again later."
			if errors.Is(err, conntrack.ErrClosing) {
				reason = "Server shutting down, try again later."
			}
			var tc *tls.Config
			if implicitTLS {
				tc = s.opts.TLSConfig
			}
			s.track.Refuse(nc, tc, "-ERR [SYS/TEMP] "+reason+"\r\n")
			return
		}
		go c.serve(implicitTLS)
	})
}

// ListenAndServe listens on Options.Network and Options.Addr and serves.
func (s *Server) ListenAndServe() error {
	network, addr := s.opts.Network, s.opts.Addr
	if network == "" {
		network = "tcp"
	}
	if addr == "" {
		addr = ":110"
		if s.opts.ImplicitTLS {
			addr = ":995"
		}
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Close closes the listeners and every connection at once. Sessions in
// progress end without entering the UPDATE state: nothing is deleted.
func (s *Server) Close() error { return s.track.Close() }

// Shutdown stops accepting connections, tells each session waiting for
// a command "-ERR [SYS/TEMP]" and disconnects it (without deleting
// anything), lets a command in progress finish first, and returns once
// every connection has ended. When ctx ends first it closes the rest
// and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error { return s.track.Shutdown(ctx) }

// loginAllowed enforces LOGIN-DELAY: it reports whether address may log
// in now, and records the login when it may.
func (s *Server) loginAllowed(address string) bool {
	if s.opts.LoginDelay <= 0 {
		return true
	}
	now := s.opts.now()
	key := strings.ToLower(address)
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.lastLogin[key]; ok && now.Sub(last) < s.opts.LoginDelay {
		return false
	}
	if len(s.lastLogin) >= maxLoginDelayEntries {
		for k, t := range s.lastLogin {
			if now.Sub(t) >= s.opts.LoginDelay {
				delete(s.lastLogin, k)
			}
		}
		if len(s.lastLogin) >= maxLoginDelayEntries {
			// Every entry is recent: forgetting one lets that user in
			// early, which is better than refusing everyone.
			for k := range s.lastLogin {
				delete(s.lastLogin, k)
				break
			}
		}
	}
	s.lastLogin[key] = now
	return true
}

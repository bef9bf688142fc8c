// Package managesieve is a ManageSieve server (RFC 5804): users upload,
// check, list, fetch, rename, delete and activate their Sieve scripts, as
// webmails and Thunderbird do. Scripts are stored where Dovecot's
// Pigeonhole keeps them (HOME/sieve/NAME.sieve and the HOME/.dovecot.sieve
// link to the active one; HOME is the Maildir's parent directory), and
// checked with package sieve before they are stored.
//
// Logins go through the same Authenticator, and so the same failure
// throttle, as SMTP, IMAP and POP3; passwords are taken only over TLS
// (STARTTLS) unless Options.AllowInsecureAuth. Reads are bounded as in the
// other servers: a whole line within IdleTimeout, a literal at a minimum
// rate, and the login within LoginTimeout of the connect.
package managesieve

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/internal/connlimit"
	"github.com/mailagent/mailagent/internal/conntrack"
	"github.com/mailagent/mailagent/maildir/sieve"
	"github.com/mailagent/mailagent/store"
)

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("managesieve: server closed")

// Authenticator checks logins: auth.Checker, the interface of every
// server's logins, which *auth.Authenticator satisfies. ManageSieve uses
// its SASL side (AUTHENTICATE); an error wrapping auth.ErrThrottled ends
// the connection after its reply.
type Authenticator = auth.Checker

// Options configure a Server. Zero values give the defaults noted.
type Options struct {
	// Network and Addr are what ListenAndServe listens on: "tcp" and
	// ":4190" by default.
	Network, Addr string
	// Authenticator checks logins. Required.
	Authenticator Authenticator
	// Home gives a user's home directory, where sieve/ and .dovecot.sieve
	// are. Required unless MaildirBase is set: then the home is the parent
	// of the user's Maildir (MaildirBase joined with store.User.Maildir),
	// as in the seed's layout /home/vmail/DOMAIN/USER/Maildir.
	Home        func(u *store.User) (string, error)
	MaildirBase string
	// TLSConfig enables STARTTLS.
	TLSConfig *tls.Config
	// AllowInsecureAuth accepts AUTHENTICATE without TLS.
	AllowInsecureAuth bool
	// MaxScriptSize bounds one script (default 1 MiB, the interpreter's
	// own limit); MaxScripts the scripts of a user (default 100);
	// MaxStorage their bytes together (default 10 MiB).
	MaxScriptSize int64
	MaxScripts    int
	MaxStorage    int64
	// IdleTimeout bounds the wait for a whole command line (default 10
	// minutes); LoginTimeout the time from connect to login (default 60
	// seconds, negative for none); WriteTimeout each write (default 1
	// minute). A literal (PUTSCRIPT's script) must arrive at 1 KiB/s on
	// average after 30 seconds.
	IdleTimeout, LoginTimeout, WriteTimeout time.Duration
	// MaxConns and MaxConnsPerIP bound connections (defaults 1000 and
	// 20) unless ConnLimiter, shared with other servers, counts them.
	MaxConns, MaxConnsPerIP int
	ConnLimiter             connlimit.Counter
	// MaxAuthFailures ends a connection after that many failed logins on
	// it (default 3).
	MaxAuthFailures int
	// Implementation is announced as IMPLEMENTATION; default "mailagent".
	Implementation string
	// Logger receives session logs; nil discards.
	Logger *slog.Logger
}

// Server is a ManageSieve server.
type Server struct {
	opts  Options
	log   *slog.Logger
	track *conntrack.Tracker[*conn]
}

// NewServer returns a Server for opts.
func NewServer(opts Options) (*Server, error) {
	if opts.Authenticator == nil {
		return nil, errors.New("managesieve: Options.Authenticator is required")
	}
	if opts.Home == nil {
		if opts.MaildirBase == "" {
			return nil, errors.New("managesieve: Options.Home or Options.MaildirBase is required")
		}
		base := opts.MaildirBase
		opts.Home = func(u *store.User) (string, error) {
			p := u.Maildir
			if !filepath.IsAbs(p) {
				p = filepath.Join(base, p)
			}
			return filepath.Dir(filepath.Clean(p)), nil
		}
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&opts.IdleTimeout, 10*time.Minute)
	def(&opts.LoginTimeout, time.Minute)
	def(&opts.WriteTimeout, time.Minute)
	if opts.MaxScriptSize <= 0 {
		opts.MaxScriptSize = 1 << 20
	}
	if opts.MaxScripts <= 0 {
		opts.MaxScripts = 100
	}
	if opts.MaxStorage <= 0 {
		opts.MaxStorage = 10 << 20
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 1000
	}
	if opts.MaxConnsPerIP <= 0 {
		opts.MaxConnsPerIP = 20
	}
	if opts.MaxAuthFailures <= 0 {
		opts.MaxAuthFailures = 3
	}
	if opts.Implementation == "" {
		opts.Implementation = "mailagent"
	}
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.track = conntrack.New[*conn](connlimit.Or(opts.ConnLimiter, opts.MaxConns, opts.MaxConnsPerIP), s.log, ErrServerClosed)
	return s, nil
}

// ListenAndServe listens on Options.Addr and serves.
func (s *Server) ListenAndServe() error {
	network, addr := s.opts.Network, s.opts.Addr
	if network == "" {
		network = "tcp"
	}
	if addr == "" {
		addr = ":4190"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve accepts connections on l until Close or Shutdown.
func (s *Server) Serve(l net.Listener) error {
	defer l.Close()
	return s.track.Serve(l, func(nc net.Conn) {
		c, err := s.track.Admit(nc, func() *conn { return newConn(s, nc) })
		if err != nil {
			s.track.Refuse(nc, nil, "BYE (TRYLATER) \"Too many connections.\"\r\n")
			return
		}
		go func() {
			defer s.track.Done(c)
			c.serve()
		}()
	})
}

// Close closes the listeners and every connection at once, and returns
// once their sessions have ended.
func (s *Server) Close() error {
	err := s.track.Close()
	s.track.Wait()
	return err
}

// Shutdown closes the listeners, lets each connection finish the command
// it is in, and waits for them until ctx ends; then it closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.track.Shutdown(ctx)
	s.track.Wait()
	return err
}

// capabilities is the capability listing, before the OK (RFC 5804
// section 1.7).
func (c *conn) capabilities() string {
	var b strings.Builder
	q := quote
	b.WriteString(q("IMPLEMENTATION") + " " + q(c.srv.opts.Implementation) + "\r\n")
	if c.tls || c.srv.opts.AllowInsecureAuth {
		b.WriteString(q("SASL") + " " + q(strings.Join(c.srv.opts.Authenticator.Mechanisms(), " ")) + "\r\n")
	} else {
		b.WriteString(q("SASL") + " " + q("") + "\r\n")
	}
	b.WriteString(q("SIEVE") + " " + q(strings.Join(sieve.Capabilities, " ")) + "\r\n")
	if c.srv.opts.TLSConfig != nil && !c.tls {
		b.WriteString(q("STARTTLS") + "\r\n")
	}
	b.WriteString(q("MAXREDIRECTS") + " " + q("4") + "\r\n")
	if c.user != nil {
		b.WriteString(q("OWNER") + " " + q(c.user.Address) + "\r\n")
	}
	b.WriteString(q("VERSION") + " " + q("1.0") + "\r\n")
	return b.String()
}

// quote writes s as a ManageSieve string: quoted, or a literal when s
// holds a CR, LF or NUL, which a quoted string cannot carry (RFC 5804
// section 4). A value a client chose (NOOP's tag) or that echoes its
// script (a parse error) so never ends the response line early, and
// never passes for a response of its own.
func quote(s string) string {
	if strings.ContainsAny(s, "\r\n\x00") {
		return "{" + strconv.Itoa(len(s)) + "}\r\n" + s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

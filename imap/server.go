package imap

import (
	"bufio"
	"compress/flate"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/internal/connlimit"
	"github.com/mailagent/mailagent/internal/conntrack"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Close or
// Shutdown.
var ErrServerClosed = errors.New("imap: server closed")

// Authenticator checks logins: auth.Checker, which *auth.Authenticator
// satisfies. Errors are classified with errors.Is against auth's
// ErrInvalidCredentials, ErrAuthzRefused and ErrMalformedResponse
// (NO [AUTHENTICATIONFAILED]) and ErrThrottled (BYE); any other error is
// a temporary failure (NO [UNAVAILABLE]).
type Authenticator = auth.Checker

// Options configure a Server. Zero values give the defaults noted.
type Options struct {
	// Network and Addr are what ListenAndServe listens on: "tcp" (the
	// default) or "unix", and an address (default ":143", or ":993" with
	// ImplicitTLS).
	Network, Addr string
	// NamespacePrefix, when set (it must end with the delimiter "."),
	// is the personal namespace's prefix: clients know every folder but
	// INBOX as NamespacePrefix+name ("INBOX.Sent" for the Maildir's
	// .Sent), as Dovecot serves a namespace with prefix = INBOX. and
	// inbox = yes. Empty (the default): the Maildir's names as they are.
	NamespacePrefix string
	// Store holds the users' Maildirs. Required.
	Store *maildir.Store
	// Authenticator checks logins. Required.
	Authenticator Authenticator
	// TLSConfig enables STARTTLS, or TLS from the first byte with
	// ImplicitTLS.
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// AllowInsecureAuth accepts passwords on connections without TLS.
	// It exists for loopback development; never set it on a public port.
	AllowInsecureAuth bool
	// LoginTimeout bounds the time from connect to a successful login,
	// however many commands (CAPABILITY, NOOP, failed attempts) come
	// meanwhile (default 60 seconds). IdleTimeout bounds the wait for a
	// whole command line, from the moment the server is ready for it to
	// its CRLF however its bytes are spread (default 30 minutes, the
	// least RFC 9051 section 5.4 allows; it is also how long IDLE lasts
	// without DONE). On expiry the client gets "* BYE" and the
	// connection is closed.
	LoginTimeout, IdleTimeout time.Duration
	// MinDataRate is the least average rate, in bytes per second, at
	// which a literal (APPEND's message, or any other) must arrive once
	// DataRateGrace has passed: each byte received buys 1/MinDataRate
	// seconds; no single wait inside a literal lasts over 5 minutes.
	// Defaults 500 bytes/s and 10 seconds, as for SMTP's DATA; a
	// negative MinDataRate turns the rate off.
	MinDataRate   int64
	DataRateGrace time.Duration
	// MaxConns bounds concurrent connections (default 10,000),
	// MaxConnsPerIP those from one client (default 50; an IPv4 address
	// or an IPv6 /64, see internal/connlimit) and
	// MaxConnsPerUser the sessions logged in as one user (default 20,
	// Dovecot's mail_max_userip_connections is 10 per address).
	// A connection over MaxConns or MaxConnsPerIP is told
	// "* BYE [UNAVAILABLE]" and closed.
	MaxConns, MaxConnsPerIP, MaxConnsPerUser int
	// ConnLimiter, when set, counts the connections in place of
	// MaxConns and MaxConnsPerIP, so that several servers share one
	// limit: examples/fullserver and mailtest give every listener of
	// the process one. Any value with the method
	// Acquire(net.Addr) (release func(), err error) will do; an error
	// refuses the connection.
	ConnLimiter connlimit.Counter
	// MaxAuthFailures ends a connection with BYE after that many failed
	// logins on it; default 3.
	MaxAuthFailures int
	// AppendLimit is the largest message APPEND accepts, advertised as
	// APPENDLIMIT; default 50 MiB.
	AppendLimit uint32
	// Hostname is the name clients reach the server by. An absolute
	// IMAP URL in CATENATE (RFC 4469) is served when it names this host
	// (or the address the client connected to) and the logged-in user;
	// relative URLs ("/INBOX/;UID=5") need no name.
	Hostname string
	// KeepOpen is how long a user's Maildir stays open after their last
	// session ends, so that a client reconnecting (most open and close
	// connections all day) finds the folder indexes in memory rather
	// than loading them again; default 1 minute, negative closes at once.
	KeepOpen time.Duration
	// Moved, when set, is told of every COPY and MOVE that succeeded:
	// the user, the source and destination folders, and the copies in
	// the destination, open for reading (Moved closes them). A spam
	// filter learns from moves into and out of Junk this way. It runs
	// before the reply, so it must hand the work off, not do it.
	Moved func(user, from, to string, msgs []*os.File)
	// Logger receives connection and error logs; nil discards.
	Logger *slog.Logger
}

// Server is an IMAP server over a maildir.Store. Like net/http's Server
// it can serve several listeners, and Shutdown ends it gracefully.
type Server struct {
	opts      Options
	log       *slog.Logger
	track     *conntrack.Tracker[*conn]
	mu        sync.Mutex
	perUser   map[string]*loggedIn
	mailboxes map[mailboxKey]*mailbox
	// notifiers are the sessions with NOTIFY, by Maildir path
	// (notify.go).
	notifyMu  sync.Mutex
	notifiers map[string]map[*notifier]struct{}
	// listWatches follow the folder lists of the Maildirs that have
	// notifiers (folderwatch.go), by path.
	listWatches map[string]*mailboxListWatch
	kept        map[string]*keptMaildir

	writeBufs sync.Pool // of *bufio.Writer, held by a connection only while it answers
	deflaters sync.Pool // of *flate.Writer, for COMPRESS=DEFLATE, likewise
	msgBufs   sync.Pool // of *[]byte for messages read whole

	previews previewQueue // PREVIEW (LAZY)'s background pool

	// ctx is the context of every session's storage calls, cancelled by
	// Close. One context for all sessions rather than one each: a
	// cancellable context keeps a map of its children and a channel
	// once used, a few hundred bytes per idle connection.
	ctx  context.Context
	stop context.CancelFunc
}

// loggedIn counts the sessions of one user and holds what they share:
// the part of their store.User that sessions keep (the address) and a
// handle on their Maildir.
type loggedIn struct {
	n    int
	user *store.User
	md   *maildir.Maildir // nil until the first session has opened it
}

// NewServer returns a Server for opts.
func NewServer(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Authenticator == nil {
		return nil, errors.New("imap: Options.Store and Options.Authenticator are required")
	}
	if opts.ImplicitTLS && opts.TLSConfig == nil {
		return nil, errors.New("imap: ImplicitTLS requires TLSConfig")
	}
	if err := CheckNamespacePrefix(opts.NamespacePrefix); err != nil {
		return nil, err
	}
	setDefault(&opts.LoginTimeout, time.Minute)
	setDefault(&opts.IdleTimeout, 30*time.Minute)
	setDefault(&opts.MinDataRate, 500)
	setDefault(&opts.DataRateGrace, 10*time.Second)
	setDefault(&opts.MaxConns, 10000)
	setDefault(&opts.MaxConnsPerIP, 50)
	setDefault(&opts.MaxConnsPerUser, 20)
	setDefault(&opts.MaxAuthFailures, 3)
	setDefault(&opts.AppendLimit, 50<<20)
	setDefault(&opts.KeepOpen, time.Minute)
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		perUser:   map[string]*loggedIn{},
		mailboxes: map[mailboxKey]*mailbox{},
		kept:      map[string]*keptMaildir{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.track = conntrack.New[*conn](connlimit.Or(opts.ConnLimiter, opts.MaxConns, opts.MaxConnsPerIP), s.log, ErrServerClosed)
	s.ctx, s.stop = context.WithCancel(context.Background())
	s.writeBufs.New = func() any { return bufio.NewWriterSize(nil, writeBufSize) }
	s.deflaters.New = func() any {
		w, _ := flate.NewWriter(io.Discard, deflateLevel) // a valid level: no error
		return w
	}
	s.msgBufs.New = func() any { b := make([]byte, 0, 32<<10); return &b }
	return s, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Serve accepts connections on l until Close or Shutdown, and then
// returns ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	return s.track.Serve(l, func(nc net.Conn) {
		c, err := s.track.Admit(nc, func() *conn { return newConn(s, nc) })
		if err != nil {
			s.refuse(nc, err)
			return
		}
		go c.serve()
	})
}

// ListenAndServe listens on Options.Network and Options.Addr and serves.
func (s *Server) ListenAndServe() error {
	network, addr := s.opts.Network, s.opts.Addr
	if network == "" {
		network = "tcp"
	}
	if addr == "" {
		addr = ":143"
		if s.opts.ImplicitTLS {
			addr = ":993"
		}
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Close closes the listeners and every connection at once, and returns
// once their sessions have ended.
func (s *Server) Close() error {
	// The tracker is closed first, so that keep, which asks it under
	// s.mu, holds no Maildir open past the swap below.
	err := s.track.Close()
	s.mu.Lock()
	kept := s.kept
	s.kept = map[string]*keptMaildir{}
	s.mu.Unlock()
	s.stop()
	s.closePreviews()
	for _, k := range kept {
		k.timer.Stop()
		k.md.Close()
	}
	// The sessions end at once (their sockets are closed, their
	// context cancelled); once Close returns none touches a Maildir.
	s.track.Wait()
	return err
}

// keptMaildir is a Maildir handle held open after its user's last
// session, until timer fires.
type keptMaildir struct {
	md    *maildir.Maildir
	timer *time.Timer
}

// keep holds md open for KeepOpen (or closes it): the store keeps a
// Maildir's state in memory while a handle to it is open.
func (s *Server) keep(md *maildir.Maildir) {
	path := md.Path()
	s.mu.Lock()
	if s.opts.KeepOpen < 0 || s.track.Closed() {
		s.mu.Unlock()
		md.Close()
		return
	}
	if k := s.kept[path]; k != nil {
		k.timer.Reset(s.opts.KeepOpen)
		s.mu.Unlock()
		md.Close()
		return
	}
	k := &keptMaildir{md: md}
	k.timer = time.AfterFunc(s.opts.KeepOpen, func() {
		s.mu.Lock()
		if s.kept[path] == k {
			delete(s.kept, path)
		}
		s.mu.Unlock()
		md.Close()
	})
	s.kept[path] = k
	s.mu.Unlock()
}

// Shutdown closes the listeners, says BYE to every connection once its
// current response is written, and waits for the connections to end or
// ctx to be done; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.track.Shutdown(ctx)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// refuse says why a connection is not served, for Admit's err, and
// closes it, in the background.
func (s *Server) refuse(nc net.Conn, err error) {
	reason := "Too many connections"
	switch {
	case errors.Is(err, conntrack.ErrClosing):
		reason = "Server shutting down"
	case errors.Is(err, connlimit.ErrPerClient):
		reason = "Too many connections from your address"
	}
	var tc *tls.Config
	if s.opts.ImplicitTLS {
		tc = s.opts.TLSConfig
	}
	s.track.Refuse(nc, tc, "* BYE [UNAVAILABLE] "+reason+"\r\n")
}

// addUser counts a session logged in as u, refusing it past
// MaxConnsPerUser.
func (s *Server) addUser(u *store.User) (*loggedIn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	li := s.perUser[u.Address]
	if li == nil {
		li = &loggedIn{user: &store.User{Address: u.Address}}
		s.perUser[u.Address] = li
	}
	if li.n >= s.opts.MaxConnsPerUser {
		if li.n == 0 {
			delete(s.perUser, u.Address)
		}
		return nil, false
	}
	li.n++
	return li, true
}

// userMaildir returns the Maildir handle li's sessions share, opening
// it for the first.
func (s *Server) userMaildir(ctx context.Context, li *loggedIn, path string) (*maildir.Maildir, error) {
	s.mu.Lock()
	md := li.md
	s.mu.Unlock()
	if md != nil {
		return md, nil
	}
	md, err := s.opts.Store.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if li.md == nil {
		li.md = md
		s.mu.Unlock()
		return md, nil
	}
	shared := li.md
	s.mu.Unlock()
	md.Close()
	return shared, nil
}

// removeUser ends a session's count; the last session's Maildir handle
// is kept open for KeepOpen.
func (s *Server) removeUser(user string) {
	s.mu.Lock()
	li := s.perUser[user]
	if li == nil {
		s.mu.Unlock()
		return
	}
	li.n--
	if li.n > 0 {
		s.mu.Unlock()
		return
	}
	delete(s.perUser, user)
	md := li.md
	s.mu.Unlock()
	if md != nil {
		s.keep(md)
	}
}

package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
	"github.com/mailagent/mailagent/internal/connlimit"
	"github.com/mailagent/mailagent/internal/readclock"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Close or
// Shutdown.
var ErrServerClosed = errors.New("imap: server closed")

// Authenticator checks logins; *auth.Authenticator satisfies it. Errors
// are classified with errors.Is against auth's ErrInvalidCredentials,
// ErrAuthzRefused and ErrMalformedResponse (NO [AUTHENTICATIONFAILED])
// and ErrThrottled (BYE); any other error is a temporary failure
// (NO [UNAVAILABLE]).
type Authenticator interface {
	// Authenticate checks a LOGIN command's username and password.
	Authenticate(ctx context.Context, username, password string, remote net.Addr) (*store.User, error)
	// Mechanisms lists the SASL mechanisms to advertise.
	Mechanisms() []string
	// NewSASLServer starts an AUTHENTICATE exchange; done is called with
	// the user once the credentials check out.
	NewSASLServer(ctx context.Context, mech string, remote net.Addr, done func(*store.User) error) (sasl.Server, error)
}

// Options configure a Server. Zero values give the defaults noted.
type Options struct {
	// Network and Addr are what ListenAndServe listens on: "tcp" (the
	// default) or "unix", and an address (default ":143", or ":993" with
	// ImplicitTLS).
	Network, Addr string
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
	// KeepOpen is how long a user's Maildir stays open after their last
	// session ends, so that a client reconnecting (most open and close
	// connections all day) finds the folder indexes in memory rather
	// than loading them again; default 1 minute, negative closes at once.
	KeepOpen time.Duration
	// Logger receives connection and error logs; nil discards.
	Logger *slog.Logger
}

// Server is an IMAP server over a maildir.Store. Like net/http's Server
// it can serve several listeners, and Shutdown ends it gracefully.
type Server struct {
	opts Options
	log  *slog.Logger
	is   *imapserver.Server // connections before TLS
	ist  *imapserver.Server // connections over TLS

	handover     *handoverListener // of ist, for connections after STARTTLS
	handoverOnce sync.Once

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	limits    connlimit.Counter
	perUser   map[string]*loggedIn
	mailboxes map[mailboxKey]*mailbox
	kept      map[string]*keptMaildir
	closed    bool
	drained   chan struct{} // closed when the last connection ends after Shutdown
	closeOnce sync.Once

	corkBufs sync.Pool // of *[]byte with corkSize capacity
	msgBufs  sync.Pool // of *[]byte for messages read whole

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
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		limits:    opts.ConnLimiter,
		perUser:   map[string]*loggedIn{},
		mailboxes: map[mailboxKey]*mailbox{},
		kept:      map[string]*keptMaildir{},
		drained:   make(chan struct{}),
	}
	if s.limits == nil {
		s.limits = connlimit.New(opts.MaxConns, opts.MaxConnsPerIP)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	s.corkBufs.New = func() any { b := make([]byte, 0, corkSize); return &b }
	s.msgBufs.New = func() any { b := make([]byte, 0, 32<<10); return &b }
	caps := imap.CapSet{}
	for _, c := range []imap.Cap{
		imap.CapIMAP4rev1, imap.CapIMAP4rev2,
		imap.CapNamespace, imap.CapUIDPlus, imap.CapESearch, imap.CapSearchRes,
		imap.CapListExtended, imap.CapListStatus, imap.CapMove, imap.CapStatusSize,
		imap.CapBinary, imap.CapChildren, imap.CapSpecialUse,
	} {
		caps[c] = struct{}{}
	}
	// Two protocol engines: one for connections before TLS, one for
	// connections over TLS, implicit or after STARTTLS. The second sees
	// a tlsConn (whose reads go through the guard), not a *tls.Conn, so
	// it is told that authentication is allowed: all its connections
	// are TLS. STARTTLS is done by the guard, which hands the connection
	// over (see conn.Close).
	plain := &imapserver.Options{
		NewSession:   s.newSession,
		Caps:         caps,
		Logger:       logAdapter{s.log},
		InsecureAuth: opts.AllowInsecureAuth,
	}
	if !opts.ImplicitTLS {
		plain.TLSConfig = opts.TLSConfig
	}
	s.is = imapserver.New(plain)
	s.ist = imapserver.New(&imapserver.Options{
		NewSession:   s.newSession,
		Caps:         caps,
		Logger:       logAdapter{s.log},
		InsecureAuth: true,
	})
	s.handover = &handoverListener{ch: make(chan net.Conn), done: make(chan struct{}), accepting: make(chan struct{})}
	return s, nil
}

// handoverListener passes connections that have done STARTTLS to the
// protocol engine for TLS connections.
type handoverListener struct {
	ch        chan net.Conn
	done      chan struct{}
	once      sync.Once
	accepting chan struct{} // closed at the first Accept
	accepted  sync.Once
}

func (l *handoverListener) Accept() (net.Conn, error) {
	l.accepted.Do(func() { close(l.accepting) })
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoverListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoverListener) Addr() net.Addr { return &net.TCPAddr{} }

// handOver gives c to the engine for TLS connections, or closes it when
// the server is closing.
func (l *handoverListener) handOver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
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
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	engine := s.is
	if s.opts.ImplicitTLS {
		engine = s.ist
	} else if s.opts.TLSConfig != nil {
		s.handoverOnce.Do(func() {
			// Serving has begun once it accepts: Close may wait for it.
			done := make(chan struct{})
			go func() {
				s.ist.Serve(s.handover)
				close(done)
			}()
			select {
			case <-s.handover.accepting:
			case <-done:
			}
		})
	}
	err := engine.Serve(&listener{Listener: l, srv: s})
	s.mu.Lock()
	delete(s.listeners, l)
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	if err == nil {
		err = net.ErrClosed
	}
	return err
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

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var err error
	for l := range s.listeners {
		if cerr := l.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = cerr
		}
	}
	conns := s.snapshotLocked()
	kept := s.kept
	s.kept = map[string]*keptMaildir{}
	s.mu.Unlock()
	s.closeOnce.Do(func() {
		s.handover.Close()
		s.is.Close()
		s.ist.Close()
	})
	s.stop()
	for _, c := range conns {
		c.Close()
	}
	for _, k := range kept {
		k.timer.Stop()
		k.md.Close()
	}
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
	if s.opts.KeepOpen < 0 || s.closed {
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
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	conns := s.snapshotLocked()
	if len(s.conns) == 0 {
		s.closeDrainedLocked()
	}
	s.mu.Unlock()
	for _, c := range conns {
		if ic := c.imapConn(); ic != nil {
			go ic.Bye("Server shutting down")
		} else {
			c.Close()
		}
	}
	select {
	case <-s.drained:
		s.Close()
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

func (s *Server) closeDrainedLocked() {
	select {
	case <-s.drained:
	default:
		close(s.drained)
	}
}

func (s *Server) snapshotLocked() []*conn {
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// admit counts a new connection against the limits, or refuses it with a
// BYE.
func (s *Server) admit(nc net.Conn) (*conn, bool) {
	s.mu.Lock()
	reason := ""
	var free func()
	if s.closed {
		reason = "Server shutting down"
	} else {
		var err error
		free, err = s.limits.Acquire(nc.RemoteAddr())
		switch {
		case errors.Is(err, connlimit.ErrPerClient):
			reason = "Too many connections from your address"
		case err != nil:
			reason = "Too many connections"
		}
	}
	if reason != "" {
		s.mu.Unlock()
		s.log.Info("imap: connection refused", "remote", nc.RemoteAddr().String(), "reason", reason)
		go s.refuse(nc, reason)
		return nil, false
	}
	c := &conn{Conn: nc, srv: s, free: free, clock: readclock.New(s.readLimits(), time.Now())}
	c.plainR = clockedReader{c: c, r: (*rawConn)(c)}
	if s.opts.ImplicitTLS {
		c.belowTLS = true
		c.split = &recordSplitter{}
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return c, true
}

// refuse says why a connection is not served and closes it.
func (s *Server) refuse(nc net.Conn, reason string) {
	var tc *tls.Config
	if s.opts.ImplicitTLS {
		tc = s.opts.TLSConfig
	}
	connlimit.Refuse(nc, tc, "* BYE [UNAVAILABLE] "+reason+"\r\n")
}

func (s *Server) release(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	c.free()
	if s.closed && len(s.conns) == 0 {
		s.closeDrainedLocked()
	}
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

// listener admits connections and, for implicit TLS, wraps them.
type listener struct {
	net.Listener
	srv *Server
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c, ok := l.srv.admit(nc)
		if !ok {
			continue
		}
		// Bounds a TLS handshake too, which runs in the greeting's
		// write, before any read.
		c.Conn.SetReadDeadline(c.clock.Deadline(time.Now()))
		if l.srv.opts.ImplicitTLS {
			return c.newTLSConn(), nil
		}
		return c, nil
	}
}

// conn is an accepted connection, below TLS. It replaces imapserver's
// fixed read deadlines with the connection's clock (see clockedReader).
// Its reads go through the guard (guard.go): here on plain connections,
// in tlsConn over TLS.
type conn struct {
	net.Conn
	srv  *Server
	free func() // gives the connection's place back to the limits

	mu     sync.Mutex
	ic     *imapserver.Conn
	bye    string // said and the connection closed before the next read
	authed bool
	clock  *readclock.Clock // read deadlines (deadline.go)

	plainR, tlsR clockedReader // the client's bytes, before and over TLS

	belowTLS     bool          // over TLS: this carries TLS records, tlsConn the plaintext
	skipGreeting bool          // after STARTTLS: the TLS engine's greeting is not sent
	flags        atomic.Uint32 // flagHandingOver, flagClosed

	failures int32 // failed logins, counted by the session

	wmu   sync.Mutex // guards the writes, the cork and the guard
	corks int32      // > 0 while a command's responses are gathered
	wbuf  *[]byte    // gathered responses, from Server.corkBufs
	g     guard

	split *recordSplitter // while the client's TLS handshake is read
}

const (
	flagHandingOver = 1 << iota // STARTTLS: the next Close hands the connection over
	flagClosed                  // Close has released the connection
)

// swapFlag changes flag from !to to to and reports whether it did.
func (c *conn) swapFlag(flag uint32, to bool) bool {
	for {
		old := c.flags.Load()
		if (old&flag != 0) == to {
			return false
		}
		if c.flags.CompareAndSwap(old, old^flag) {
			return true
		}
	}
}

// tlsConn is a TLS connection (implicit or after STARTTLS) as imapserver
// sees it: reads go through the guard.
type tlsConn struct {
	*tls.Conn
	c *conn
}

func (t *tlsConn) Read(p []byte) (int, error) { return t.c.guardedRead(&t.c.tlsR, t.Conn, p) }

// newTLSConn starts TLS on c, as the server.
func (c *conn) newTLSConn() *tlsConn {
	t := &tlsConn{Conn: tls.Server(c, c.srv.opts.TLSConfig), c: c}
	c.tlsR = clockedReader{c: c, r: t.Conn}
	return t
}

func (t *tlsConn) Write(p []byte) (int, error) {
	t.c.wmu.Lock()
	skip := t.c.skipGreeting
	t.c.skipGreeting = false
	t.c.g.answered(p)
	t.c.wmu.Unlock()
	if skip {
		return len(p), nil
	}
	return t.Conn.Write(p)
}

// Read reads the plaintext through the guard, or below TLS the records.
func (c *conn) Read(p []byte) (int, error) {
	if c.flags.Load()&flagHandingOver != 0 {
		// The plain engine reads once more before it lets go.
		return 0, errHandedOver
	}
	if c.belowTLS {
		return c.rawRead(p)
	}
	return c.guardedRead(&c.plainR, c, p)
}

// rawConn reads what the client sends, the first TLS handshake records
// cut small (tlsframe.go).
type rawConn conn

func (r *rawConn) Read(p []byte) (int, error) { return (*conn)(r).rawRead(p) }

func (c *conn) rawRead(p []byte) (int, error) {
	if s := c.split; s != nil {
		n, done, err := s.read(c.Conn, p)
		if done || err != nil {
			c.split = nil
		}
		return n, err
	}
	return c.Conn.Read(p)
}

// corkSize is how much of a command's responses is gathered before it
// is written.
const corkSize = 64 << 10

// cork gathers writes until uncork: imapserver flushes every FETCH
// response on its own, one system call per message otherwise.
func (c *conn) cork() {
	c.wmu.Lock()
	c.corks++
	c.wmu.Unlock()
}

// uncork writes what cork gathered and gives the buffer back: an idle
// connection holds none.
func (c *conn) uncork() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.corks--
	if c.corks > 0 {
		return nil
	}
	return c.flushLocked(true)
}

func (c *conn) flushLocked(release bool) error {
	if c.wbuf == nil {
		return nil
	}
	var err error
	if len(*c.wbuf) > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Minute))
		_, err = c.Conn.Write(*c.wbuf)
	}
	*c.wbuf = (*c.wbuf)[:0]
	if release {
		c.srv.corkBufs.Put(c.wbuf)
		c.wbuf = nil
	}
	return err
}

func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.belowTLS && c.g.answered(p) && c.g.held() == nil {
		// STARTTLS: the client's TLS handshake comes next.
		c.split = &recordSplitter{}
	}
	if c.corks == 0 {
		return c.Conn.Write(p)
	}
	if c.wbuf == nil {
		c.wbuf = c.srv.corkBufs.Get().(*[]byte)
	}
	if len(*c.wbuf)+len(p) > corkSize {
		if err := c.flushLocked(false); err != nil {
			return 0, err
		}
		if len(p) > corkSize {
			return c.Conn.Write(p)
		}
	}
	*c.wbuf = append(*c.wbuf, p...)
	return len(p), nil
}

// guardReply writes a tagged reply of the guard's through w, the writer
// of imapserver's replies, with imapserver's deadline for responses.
func (c *conn) guardReply(w io.Writer, tag, text []byte) error {
	b := make([]byte, 0, len(tag)+len(text))
	b = append(append(b, tag...), text...)
	c.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := w.Write(b)
	c.Conn.SetWriteDeadline(time.Time{})
	return err
}

// guardBye says BYE and closes the connection. It reads for a moment
// what the client has sent on before closing, so that the replies reach
// it rather than a reset for unread data.
func (c *conn) guardBye(w io.Writer) {
	c.guardReply(w, []byte("*"), []byte(" BYE Command or literal too large, closing the connection\r\n"))
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		c.Conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.CopyN(io.Discard, c.Conn, 1<<20)
	}
	c.Close()
}

// SetWriteDeadline is skipped while corked: imapserver sets one per
// response, and the gathered writes get theirs when they go out.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	corked := c.corks > 0
	c.wmu.Unlock()
	if corked {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

// SetReadDeadline is called by imapserver before each command is read:
// that is where a pending BYE goes out, after the previous command's
// tagged reply. The deadline itself is the clock's, set at each read
// (clockedReader); imapserver's is dropped.
func (c *conn) SetReadDeadline(time.Time) error {
	c.mu.Lock()
	bye, ic := c.bye, c.ic
	c.bye = ""
	c.mu.Unlock()
	if bye != "" && ic != nil {
		ic.Bye(bye)
		return net.ErrClosed
	}
	return nil
}

// byeAfterReply ends the connection with a BYE once the current command
// is answered.
func (c *conn) byeAfterReply(text string) {
	c.mu.Lock()
	c.bye = text
	c.mu.Unlock()
}

func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// errHandedOver ends the plain engine's reading of a connection that
// has done STARTTLS.
var errHandedOver = fmt.Errorf("imap: connection handed over after STARTTLS: %w", net.ErrClosed)

// startTLS is the guard's STARTTLS: the OK is written, and the
// connection goes to the engine for TLS connections once the plain
// engine lets go of it (its Close). Bytes the client sent after STARTTLS
// without waiting for the OK are dropped, as they must be.
func (c *conn) startTLS() {
	c.wmu.Lock()
	c.g = guard{}
	c.belowTLS = true
	c.split = &recordSplitter{}
	c.skipGreeting = true
	c.wmu.Unlock()
	c.mu.Lock()
	c.ic = nil
	c.mu.Unlock()
	c.swapFlag(flagHandingOver, true)
}

// canStartTLS reports whether the guard does STARTTLS on c now.
func (c *conn) canStartTLS() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv.opts.TLSConfig != nil && !c.srv.opts.ImplicitTLS && !c.authed && !c.belowTLS
}

func (c *conn) Close() error {
	if c.swapFlag(flagHandingOver, false) {
		c.srv.handover.handOver(c.newTLSConn())
		return nil
	}
	err := c.Conn.Close()
	if c.swapFlag(flagClosed, true) {
		c.srv.release(c)
	}
	return err
}

func (c *conn) setAuthed(v bool) {
	c.mu.Lock()
	c.authed = v
	if v {
		c.clock.LoggedIn()
	}
	c.mu.Unlock()
}

func (c *conn) imapConn() *imapserver.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ic
}

// logAdapter gives imapserver's Printf logging to slog.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Printf(format string, args ...any) {
	a.l.Warn("imap: " + fmt.Sprintf(format, args...))
}

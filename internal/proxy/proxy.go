// Package proxy relays IMAP, POP3, submission and LMTP sessions to the
// backend node that holds each user's mailbox, as Dovecot's proxy and
// Postfix relaying to LMTP backends do for the seed's installation when
// it outgrows one machine.
//
// A client logs in at the proxy, which checks the credentials through
// auth (and its throttle), finds the user's backend (the directory's
// Home: the user's host, else its domain's, else a consistent hash over
// Options.Backends), logs in there with the same credentials and from
// then on copies the session's bytes both ways. Every backend connection
// opens with a PROXY protocol v2 header carrying the client's address,
// and IMAP logins send ID ("x-originating-ip" ...) as well, so that a
// backend that trusts the proxy logs and throttles the real client.
// LMTP and submission route each recipient, or the authenticated user,
// the same way.
//
// A backend that cannot be reached is a temporary failure for its
// users only: NO [UNAVAILABLE], -ERR [SYS/TEMP], 451 4.4.1.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/internal/conntrack"
	"github.com/mailagent/mailagent/store"
	"github.com/pires/go-proxyproto"
)

// Directory finds the backend of a user: store.SQL's Home.
type Directory interface {
	Home(ctx context.Context, address string) (string, error)
}

// BackendTLS says how the proxy speaks TLS to a backend.
type BackendTLS int

const (
	// StartTLS upgrades every backend connection with STARTTLS (IMAP),
	// STLS (POP3) or STARTTLS (SMTP, and LMTP when offered).
	StartTLS BackendTLS = iota
	// ImplicitTLS connects with TLS at once (the ports are then the
	// imaps, pop3s and submissions ones); LMTP uses STARTTLS when
	// offered.
	ImplicitTLS
	// NoTLS speaks plain text to the backends: for a private network.
	NoTLS
)

// Ports are the backends' ports, the same on every backend.
type Ports struct {
	IMAP, POP3, Submission, LMTP int
}

// Options configure a Proxy.
type Options struct {
	// Directory finds each user's backend. Required.
	Directory Directory
	// Auth checks the logins, with its throttle. Required.
	Auth auth.Checker
	// Backends are the hosts the consistent hash chooses from for users
	// whose directory row names no host.
	Backends []string
	// Ports are the backends' ports (defaults 143, 110, 587, 24).
	Ports Ports
	// BackendTLS is how backend connections are encrypted, and
	// BackendTLSConfig their configuration (its ServerName defaults to
	// the backend's host).
	BackendTLS       BackendTLS
	BackendTLSConfig *tls.Config
	// TLSConfig is the clients' side: STARTTLS, and implicit TLS on
	// the listeners served so. Nil offers no TLS.
	TLSConfig *tls.Config
	// AllowInsecureAuth accepts logins before TLS.
	AllowInsecureAuth bool
	// SourceAddr, when set, is the local address of backend
	// connections: the one the backends list as a trusted proxy.
	SourceAddr net.IP
	// DialTimeout bounds connecting to a backend and logging in there
	// (default 5s); a backend slower than that is down.
	DialTimeout time.Duration
	// LoginTimeout bounds a client's time before it is logged in
	// (default 60s).
	LoginTimeout time.Duration
	// MaxLineLength bounds a command before login, literals included
	// (default 8192).
	MaxLineLength int
	// MaxAuthFailures closes a connection after that many failed logins
	// (default 3).
	MaxAuthFailures int
	// Hostname names the proxy in greetings and to SMTP backends.
	Hostname string
	// MaxMessageBytes and MaxRecipients are the SMTP limits (defaults
	// 25 MiB, 100).
	MaxMessageBytes int64
	MaxRecipients   int
	// LMTPNetworks are the clients the LMTP relay serves (over TCP;
	// a Unix socket's permissions are its boundary); nil means
	// loopback only. Others get 554 5.7.1.
	LMTPNetworks []netip.Prefix
	// Logger receives one line per session and per failure; nil
	// discards.
	Logger *slog.Logger
}

// ErrUnavailable is wrapped by the errors of a backend that could not be
// reached or did not greet in time.
var ErrUnavailable = errors.New("proxy: backend unavailable")

// ErrClosed is returned by the Serve methods after Shutdown or Close.
var ErrClosed = errors.New("proxy: closed")

// Proxy relays sessions to backends. Its Serve methods may be called for
// any number of listeners; Shutdown ends them all.
type Proxy struct {
	opts Options
	log  *slog.Logger

	// track runs the listeners' accept loop (with its pause on passing
	// Accept failures) and holds every accepted connection, as it does
	// for the mail servers; limits are applied by the listeners given.
	track *conntrack.Tracker[*accepted]

	mu sync.Mutex
	// sessions are the open sessions by user key (store.Address.Key),
	// for Kick; anonymous ones (not yet logged in) by "".
	sessions map[string]map[*session]struct{}
	// closers end the go-smtp servers' sessions (Close).
	closers []func() error
}

// accepted is one accepted connection as the tracker sees it: a relay
// ends when its client or backend ends it, so there is nothing to ask
// it to drain.
type accepted struct{ net.Conn }

func (*accepted) Drain() {}

// unlimited admits every connection: the proxy's listeners come counted
// already (fullserver wraps them in connlimit.Listener, shared with its
// other listeners).
type unlimited struct{}

func (unlimited) Acquire(net.Addr) (func(), error) { return func() {}, nil }

// New checks opts and returns a Proxy.
func New(opts Options) (*Proxy, error) {
	if opts.Directory == nil || opts.Auth == nil {
		return nil, errors.New("proxy: Directory and Auth are required")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.Ports.IMAP, 143)
	def(&opts.Ports.POP3, 110)
	def(&opts.Ports.Submission, 587)
	def(&opts.Ports.LMTP, 24)
	def(&opts.MaxLineLength, 8192)
	def(&opts.MaxAuthFailures, 3)
	def(&opts.MaxRecipients, 100)
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 25 << 20
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.LoginTimeout <= 0 {
		opts.LoginTimeout = time.Minute
	}
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	if opts.LMTPNetworks == nil {
		opts.LMTPNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Proxy{opts: opts, log: log, track: conntrack.New[*accepted](unlimited{}, log, ErrClosed),
		sessions: map[string]map[*session]struct{}{}}, nil
}

// Route returns the backend host of user: the directory's Home, else the
// consistent-hash choice among Options.Backends.
func (p *Proxy) Route(ctx context.Context, user string) (string, error) {
	host, err := p.opts.Directory.Home(ctx, user)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if host != "" {
		return host, nil
	}
	if h := pick(p.opts.Backends, userKey(user)); h != "" {
		return h, nil
	}
	return "", fmt.Errorf("%w: no host for %s and no backends configured", ErrUnavailable, user)
}

// pick is rendezvous hashing: the backend with the highest hash of
// itself and key, so that adding or removing one backend moves only the
// users that hash to it.
func pick(backends []string, key string) string {
	best, bestScore := "", uint64(0)
	for _, b := range backends {
		h := fnv.New64a()
		h.Write([]byte(b))
		h.Write([]byte{0})
		h.Write([]byte(key))
		if s := h.Sum64(); best == "" || s > bestScore {
			best, bestScore = b, s
		}
	}
	return best
}

// userKey is the key sessions are filed under: the address's Key, or
// the name as given when it is not an address.
func userKey(user string) string {
	if a, err := store.ParseAddress(user); err == nil {
		return a.Key()
	}
	return user
}

// dial connects to port on host's backend from the proxy's source
// address, sends the PROXY v2 header naming client (and local, the
// address the client reached) and, under ImplicitTLS when tlsNow is
// set, starts TLS. The deadline is the whole login's.
func (p *Proxy) dial(ctx context.Context, host string, port int, client, local net.Addr, tlsNow bool) (net.Conn, error) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h // the ports are the proxy's
	}
	d := net.Dialer{Timeout: p.opts.DialTimeout}
	if p.opts.SourceAddr != nil {
		d.LocalAddr = &net.TCPAddr{IP: p.opts.SourceAddr}
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, addr, err)
	}
	nc.SetDeadline(time.Now().Add(p.opts.DialTimeout))
	hdr := proxyproto.HeaderProxyFromAddrs(2, client, local)
	if _, err := hdr.WriteTo(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, addr, err)
	}
	if tlsNow && p.opts.BackendTLS == ImplicitTLS {
		return p.clientTLS(nc, host)
	}
	return nc, nil
}

// clientTLS starts TLS to the backend host over nc.
func (p *Proxy) clientTLS(nc net.Conn, host string) (net.Conn, error) {
	cfg := p.opts.BackendTLSConfig.Clone()
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	tc := tls.Client(nc, cfg)
	if err := tc.Handshake(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %s: TLS: %w", ErrUnavailable, host, err)
	}
	return tc, nil
}

// serve accepts on ln until Shutdown, running handle for each
// connection.
func (p *Proxy) serve(ln net.Listener, handle func(net.Conn)) error {
	return p.track.Serve(ln, func(nc net.Conn) {
		c, err := p.track.Admit(nc, func() *accepted { return &accepted{nc} })
		if err != nil {
			nc.Close()
			return
		}
		go func() {
			defer p.track.Done(c)
			handle(nc)
			nc.Close()
		}()
	})
}

// Kick ends the open sessions of user (a moved mailbox): each client is
// told (BYE, -ERR) where its protocol allows and disconnected, so that
// its next login goes to the new backend. It returns how many sessions
// it ended.
func (p *Proxy) Kick(user string) int {
	p.mu.Lock()
	set := p.sessions[userKey(user)]
	delete(p.sessions, userKey(user))
	p.mu.Unlock()
	for s := range set {
		s.kick()
	}
	if len(set) > 0 {
		p.log.Info("proxy: sessions ended", "user", user, "sessions", len(set))
	}
	return len(set)
}

// Close closes the listeners and every session at once.
func (p *Proxy) Close() error {
	p.track.Close()
	p.mu.Lock()
	all := p.sessions
	p.sessions = map[string]map[*session]struct{}{}
	p.mu.Unlock()
	for _, set := range all {
		for s := range set {
			s.close()
		}
	}
	p.mu.Lock()
	closers := p.closers
	p.mu.Unlock()
	for _, c := range closers {
		c()
	}
	p.track.Wait()
	return nil
}

// Shutdown closes the listeners and waits for the sessions to end (a
// relayed session ends when its client or backend ends it), until ctx
// ends, when the rest are closed.
func (p *Proxy) Shutdown(ctx context.Context) error {
	if err := p.track.Shutdown(ctx); err != nil && ctx.Err() != nil {
		p.Close()
		return err
	}
	p.mu.Lock()
	closers := p.closers
	p.mu.Unlock()
	for _, c := range closers {
		c()
	}
	return nil
}

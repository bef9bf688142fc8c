package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/internal/connlimit"
	"github.com/mailagent/mailagent/internal/conntrack"
	"github.com/mailagent/mailagent/internal/unixsock"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Close or
// Shutdown.
var ErrServerClosed = errors.New("smtp: server closed")

// Role is which of the SMTP roles a Server plays.
type Role int

const (
	// MX receives mail from the world for the local domains (port 25):
	// no AUTH, recipients in local or relayed domains only, the
	// connect/MAIL/message checks.
	MX Role = iota
	// Submission takes mail from authenticated users (587 with STARTTLS,
	// 465 with ImplicitTLS): AUTH over TLS only, sender ownership,
	// Message-ID and Date added, signing.
	Submission
	// LMTP delivers mail handed over by another MTA (RFC 2033), with a
	// reply per recipient.
	LMTP
)

// String names the role in logs.
func (r Role) String() string {
	switch r {
	case MX:
		return "mx"
	case Submission:
		return "submission"
	case LMTP:
		return "lmtp"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Authenticator serves the SASL exchanges of AUTH; *auth.Authenticator
// satisfies it. The errors of its servers are classified with errors.Is
// against auth's ErrInvalidCredentials, ErrAuthzRefused,
// ErrMalformedResponse (535 5.7.8) and ErrThrottled (454 4.7.0); any
// other error is a temporary failure.
type Authenticator interface {
	// Mechanisms lists the mechanisms to advertise.
	Mechanisms() []string
	// NewSASLServer starts an exchange; done is called with the user
	// once the credentials check out.
	NewSASLServer(ctx context.Context, mech string, remote net.Addr, done func(*store.User) error) (sasl.Server, error)
}

// Options configure a Server. Zero values give the defaults noted.
type Options struct {
	// Role is the server's role.
	Role Role
	// Network and Addr are what ListenAndServe listens on: "tcp" (the
	// default) or "unix", and an address (default ":25", ":587", ":465"
	// or ":24" by role and ImplicitTLS).
	Network, Addr string
	// SocketMode, SocketOwner and SocketGroup are the permissions of the
	// Unix socket ListenAndServe creates, set before it takes a
	// connection (see internal/unixsock): default 0600 and the server's
	// user and group. For LMTP they are the trust boundary.
	SocketMode               os.FileMode
	SocketOwner, SocketGroup string
	// LMTPNetworks are the client networks an LMTP server takes TCP
	// connections from; nil means loopback only (127.0.0.0/8, ::1).
	// LMTP has no authentication (RFC 2033, and Dovecot's likewise):
	// who can connect is its boundary. A client from elsewhere is
	// answered 554 5.7.1 in place of the greeting and disconnected.
	// Unix-socket clients are let in; the socket's permissions decide.
	LMTPNetworks []netip.Prefix
	// Hostname is this host's name, in the greeting and in Received and
	// Authentication-Results fields. Default os.Hostname().
	Hostname string
	// PostmasterDomain is the domain of the postmaster that a recipient
	// of just "postmaster" (RCPT TO:<postmaster>, any case) is: RFC 5321
	// section 4.5.1 requires every server to accept it. It becomes
	// postmaster@PostmasterDomain and is routed like any recipient, so a
	// forwarding or a mailbox of that address receives it. Default
	// Hostname, as Postfix appends $myorigin.
	PostmasterDomain string
	// Target receives the accepted mail, normally a *Router. Required.
	Target mail.Target
	// TLSConfig enables STARTTLS, or TLS from the first byte with
	// ImplicitTLS. Submission requires it.
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// Authenticator checks logins (Submission, required there).
	Authenticator Authenticator
	// Directory answers which sender addresses a user owns (Submission,
	// required there): the user's own address and the forwardings that
	// resolve to the user's mailbox.
	Directory store.Directory
	// Resolve tunes that resolution; it should match the Router's.
	Resolve store.ResolveOptions
	// Checks are the sender-authentication hooks (MX) and the filters
	// (every role).
	Checks mail.Checks
	// Quarantine, when set, receives the messages a filter quarantines
	// (held in the queue: smtp/queue's Quarantine), in place of Target;
	// nil files them in the recipients' Junk folders.
	Quarantine mail.Target
	// Signer signs submitted mail (Submission), e.g. DKIM. It runs only
	// on messages whose From and Sender the user may use.
	Signer mail.Signer
	// SendAs grants submitting users addresses beyond their own and the
	// forwardings that deliver to them: user address → addresses they
	// may also use, in MAIL FROM and in the From and Sender fields, or
	// "@domain" for every address of a domain. The same rule covers the
	// envelope and the header (553 5.7.1 otherwise).
	SendAs map[string][]string
	// MaxMessageBytes is advertised in SIZE and enforced (552 5.3.4);
	// default 50 MiB.
	MaxMessageBytes int64
	// MaxRecipients per transaction; default 100 (452 4.5.3 beyond).
	MaxRecipients int
	// MaxLineLength bounds command and message lines, CRLF included;
	// default 4096. A longer line ends the connection.
	MaxLineLength int
	// ReadTimeout bounds the wait for a whole command line, from the
	// moment the server is ready for it to its CRLF however the bytes
	// are spread, and any one wait inside DATA or BDAT (default 5
	// minutes, RFC 5321 section 4.5.3.2's server timeout). WriteTimeout
	// bounds every reply (default 1 minute). On expiry the client gets
	// "421 4.4.2" and the connection is closed.
	ReadTimeout, WriteTimeout time.Duration
	// MinDataRate is the least average rate, in bytes per second, at
	// which a message's content (DATA, or the BDAT chunks of a message
	// with the commands between them) must arrive once DataRateGrace
	// has passed: each byte received buys 1/MinDataRate seconds, as
	// Postfix's smtpd_min_data_rate does. Defaults 500 bytes/s and 10
	// seconds; a negative MinDataRate turns the rate off (ReadTimeout
	// still bounds each wait).
	MinDataRate   int64
	DataRateGrace time.Duration
	// LoginTimeout bounds the time from connect to a successful AUTH on
	// Submission, however many other commands come on the way (default
	// 60 seconds); the client gets "421 4.4.2". Negative turns it off.
	LoginTimeout time.Duration
	// MaxConns bounds concurrent connections (default 1000) and
	// MaxConnsPerIP those from one client network (default 20): one
	// IPv4 address, or one IPv6 /64, since a host picks its addresses
	// within its /64 at will. Unix-socket clients count only in
	// MaxConns. A connection over a limit is told "421 4.7.0" (closed
	// without a word on ImplicitTLS) and closed.
	MaxConns, MaxConnsPerIP int
	// ConnLimiter, when set, counts the connections in place of
	// MaxConns and MaxConnsPerIP, so that several servers share one
	// limit: examples/fullserver and mailtest give every listener of
	// the process one. Any value with the method
	// Acquire(net.Addr) (release func(), err error) will do; an error
	// refuses the connection.
	ConnLimiter connlimit.Counter
	// MaxAuthFailures ends a connection (421 4.7.0) after that many
	// failed logins on it; default 3.
	MaxAuthFailures int
	// MaxRecipientErrors ends an MX or submission connection after that
	// many recipients refused for good (5xx) on it, across its
	// transactions, as Postfix's smtpd_hard_error_limit does: the last
	// is answered 421 4.7.0 and the connection closed, so one connection
	// cannot walk the directory for valid addresses. Default 20; negative
	// for none. LMTP, whose clients are trusted by network, has none.
	MaxRecipientErrors int
	// MaxJunkCommands ends an MX or submission connection at the
	// command past that many NOOP, RSET, VRFY, EXPN, ETRN and HELP
	// commands since its last accepted message (421 4.7.0), as Postfix's
	// smtpd_junk_command_limit does, so that a client cannot hold a
	// connection slot forever by keeping it busy with commands that
	// deliver nothing. Default 100; negative for none. LMTP has none.
	MaxJunkCommands int
	// SpoolDir holds messages above 1 MiB while they are received
	// (unlinked files); default os.TempDir().
	SpoolDir string
	// Logger receives connection and transaction logs; nil discards.
	Logger *slog.Logger

	// now is the clock for Received and Date fields, time.Now if nil;
	// the package's tests set it.
	now func() time.Time
}

// Server is an SMTP server in one Role, built on go-smtp. Like
// net/http's Server, it can serve several listeners, and Shutdown ends
// it gracefully.
type Server struct {
	opts Options
	gs   *gosmtp.Server
	log  *slog.Logger
	// sendAs indexes Options.SendAs.
	sendAs *grants

	track *conntrack.Tracker[*conn]
}

// NewServer returns a Server for opts.
func NewServer(opts Options) (*Server, error) {
	if opts.Target == nil {
		return nil, errors.New("smtp: Options.Target is required")
	}
	if opts.Role == Submission && (opts.TLSConfig == nil || opts.Authenticator == nil || opts.Directory == nil) {
		return nil, errors.New("smtp: submission requires TLSConfig, Authenticator and Directory")
	}
	if opts.ImplicitTLS && opts.TLSConfig == nil {
		return nil, errors.New("smtp: ImplicitTLS requires TLSConfig")
	}
	sendAs, err := newGrants(opts.SendAs)
	if err != nil {
		return nil, err
	}
	if opts.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("smtp: hostname: %w", err)
		}
		opts.Hostname = h
	}
	setDefault(&opts.MaxMessageBytes, 50<<20)
	setDefault(&opts.MaxRecipients, 100)
	setDefault(&opts.MaxLineLength, 4096)
	setDefault(&opts.ReadTimeout, 5*time.Minute)
	setDefault(&opts.WriteTimeout, time.Minute)
	setDefault(&opts.MinDataRate, 500)
	setDefault(&opts.DataRateGrace, 10*time.Second)
	setDefault(&opts.LoginTimeout, time.Minute)
	setDefault(&opts.MaxConns, 1000)
	setDefault(&opts.MaxConnsPerIP, 20)
	setDefault(&opts.MaxAuthFailures, 3)
	setDefault(&opts.MaxRecipientErrors, 20)
	setDefault(&opts.MaxJunkCommands, 100)
	if opts.now == nil {
		opts.now = time.Now
	}
	s := &Server{
		opts:   opts,
		log:    opts.Logger,
		sendAs: sendAs,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.track = conntrack.New[*conn](connlimit.Or(opts.ConnLimiter, opts.MaxConns, opts.MaxConnsPerIP), s.log, ErrServerClosed)
	gs := gosmtp.NewServer(gosmtp.BackendFunc(s.newSession))
	gs.Domain = opts.Hostname
	gs.LMTP = opts.Role == LMTP
	// TLS, STARTTLS included, runs in conn, below go-smtp, so that the
	// connection's scanner sees the plaintext: go-smtp has no TLS
	// configuration of its own.
	gs.MaxMessageBytes = opts.MaxMessageBytes
	gs.MaxRecipients = opts.MaxRecipients
	gs.MaxLineLength = opts.MaxLineLength
	// Read deadlines are conn's (see readLimits), never go-smtp's,
	// which renews one on every line.
	gs.WriteTimeout = opts.WriteTimeout
	// The session refuses AUTH before TLS itself, with RFC 4954's 538.
	gs.AllowInsecureAuth = true
	gs.EnableSMTPUTF8 = true
	// DSN (RFC 3461): RET, ENVID, NOTIFY and ORCPT are kept with the
	// message and honoured by the queue's notifications.
	gs.EnableDSN = true
	gs.ErrorLog = logAdapter{s.log}
	s.gs = gs
	return s, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Serve accepts connections on l until Close or Shutdown, then returns
// ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	// go-smtp runs the accept loop; the tracker admits what it accepts
	// (listener) and owns Close and Shutdown.
	untrack, err := s.track.Track(l)
	if err != nil {
		return err
	}
	err = s.gs.Serve(&listener{Listener: l, srv: s})
	untrack()
	if s.track.Closed() {
		return ErrServerClosed
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
		switch {
		case s.opts.Role == LMTP:
			addr = ":24"
		case s.opts.Role == Submission && s.opts.ImplicitTLS:
			addr = ":465"
		case s.opts.Role == Submission:
			addr = ":587"
		default:
			addr = ":25"
		}
	}
	var l net.Listener
	var err error
	if network == "unix" {
		l, err = unixsock.Listen(addr, unixsock.Options{
			Mode: s.opts.SocketMode, Owner: s.opts.SocketOwner, Group: s.opts.SocketGroup})
	} else {
		l, err = net.Listen(network, addr)
	}
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Close closes the listeners and every connection at once; transactions
// in flight are aborted (their clients got no 250, nothing is stored).
func (s *Server) Close() error { return s.track.Close() }

// Shutdown stops accepting connections, tells idle clients 421 and
// disconnects them, lets each transaction in flight finish (its reply
// is the connection's last) and returns once every connection has
// ended. When ctx ends first it closes the rest and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error { return s.track.Shutdown(ctx) }

// Replies to a connection refused before its greeting.
const (
	replyTooManyConns = "421 4.7.0 Too many connections, try again later\r\n"
	replyNotAllowed   = "554 5.7.1 Access denied\r\n"
)

// loopback is LMTPNetworks' default.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// clientAllowed reports whether a client at a may connect: anyone but
// to LMTP, where a TCP client must be in LMTPNetworks.
func (s *Server) clientAllowed(a net.Addr) bool {
	if s.opts.Role != LMTP {
		return true
	}
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		// A Unix socket: its permissions are the boundary. Any other
		// kind of connection (an embedder's in-memory listener) is
		// trusted as its embedder set it up.
		return true
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	nets := s.opts.LMTPNetworks
	if nets == nil {
		nets = loopback
	}
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// admit wraps nc, or refuses it, with the reply to write, when the
// client's network is not allowed, the server is closed or a connection
// limit is reached.
func (s *Server) admit(nc net.Conn) (*conn, string) {
	if !s.clientAllowed(nc.RemoteAddr()) {
		s.log.Warn("connection refused: client network not allowed", "role", s.opts.Role.String(),
			"remote", nc.RemoteAddr().String())
		return nil, replyNotAllowed
	}
	c, err := s.track.Admit(nc, func() *conn { return newConn(nc, s) })
	if err != nil {
		return nil, replyTooManyConns
	}
	return c, ""
}

// logAdapter sends go-smtp's internal error log to slog.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Printf(format string, v ...any) { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a logAdapter) Println(v ...any)               { a.l.Warn(fmt.Sprint(v...)) }

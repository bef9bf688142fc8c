package outbound

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/smtp/mail"
)

// Dialer opens network connections; *net.Dialer satisfies it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Credentials are the AUTH user name and password for a smart host.
type Credentials struct {
	Username string
	Password string
}

// Options configures a Client. The zero value delivers to port 25 of each
// domain's MX hosts, resolved with the system resolver.
type Options struct {
	// Hostname is the name given in EHLO and LHLO; "localhost" if empty.
	Hostname string
	// Resolver looks up MX records and addresses; net.DefaultResolver if nil.
	Resolver dnsauth.Resolver
	// Port is the port for MX deliveries; 25 if zero. Next hops naming a
	// port keep theirs.
	Port int
	// Dialer opens connections; a net.Dialer with a 30 s timeout if nil.
	Dialer Dialer
	// TLSConfig is the base TLS configuration (RootCAs, client
	// certificates); ServerName and InsecureSkipVerify are set per
	// connection from the TLS requirement.
	TLSConfig *tls.Config
	// TLSPolicy says per domain what TLS MX deliveries need; opportunistic
	// TLS for every domain if nil.
	TLSPolicy TLSPolicy
	// RelayHost, when set, is the next hop for every message that would
	// otherwise go to a domain's MX hosts (Postfix's relayhost), e.g.
	// "smtp:[smtp.example.net]:587" or "smtps:[smtp.example.net]:465".
	RelayHost string
	// Credentials returns the AUTH credentials for a smart host (a next
	// hop named directly, never an MX), or nil for none. Credentials are
	// only ever sent over TLS, and a smart host with credentials must
	// present a certificate valid for its name.
	Credentials func(host string) *Credentials
	// MaxAddresses bounds how many addresses one Open tries; 5 if zero.
	MaxAddresses int
	// CommandTimeout bounds each command's reply; 5 minutes if zero.
	CommandTimeout time.Duration
	// DataTimeout bounds the reply to the end of DATA; 10 minutes if zero.
	DataTimeout time.Duration
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
}

// Client delivers messages to next hops. It holds no connection itself
// and is safe for concurrent use.
type Client struct {
	opts  Options
	log   *slog.Logger
	relay *NextHop
}

// New returns a Client for opts, or an error when opts.RelayHost does not
// parse.
func New(opts Options) (*Client, error) {
	c := &Client{opts: opts, log: opts.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.opts.Hostname == "" {
		c.opts.Hostname = "localhost"
	}
	if strings.ContainsAny(c.opts.Hostname, " \r\n") {
		return nil, fmt.Errorf("outbound: invalid hostname %q", c.opts.Hostname)
	}
	if c.opts.Resolver == nil {
		c.opts.Resolver = net.DefaultResolver
	}
	if c.opts.Port == 0 {
		c.opts.Port = 25
	}
	if c.opts.Dialer == nil {
		c.opts.Dialer = &net.Dialer{Timeout: 30 * time.Second}
	}
	if c.opts.MaxAddresses <= 0 {
		c.opts.MaxAddresses = 5
	}
	if c.opts.CommandTimeout <= 0 {
		c.opts.CommandTimeout = 5 * time.Minute
	}
	if c.opts.DataTimeout <= 0 {
		c.opts.DataTimeout = 10 * time.Minute
	}
	if opts.RelayHost != "" {
		h, err := ParseNextHop(opts.RelayHost)
		if err != nil {
			return nil, err
		}
		c.relay = &h
	}
	return c, nil
}

// Message is one message for some recipients through one next hop.
type Message struct {
	// From is the reverse path, empty for the null sender.
	From string
	// Recipients are distinct forward paths.
	Recipients []string
	// Body is the message content, sent as it is apart from line endings.
	Body mail.Body
	// SMTPUTF8 is set when the message was received with SMTPUTF8 or
	// its envelope holds UTF-8 (RFC 6531). A next hop without SMTPUTF8
	// still gets it, without the parameter, when nothing in its envelope
	// or header section is UTF-8; otherwise it is refused 553 5.6.7 or
	// 5.6.9.
	SMTPUTF8 bool
	// Ret and EnvID are the RET and ENVID of the message's MAIL (RFC
	// 3461 sections 4.3 and 4.4), passed on to a next hop that offers
	// DSN; EnvID is decoded, and one that is not printable ASCII is not
	// passed on.
	Ret, EnvID string
	// DSN, when not nil, is parallel to Recipients: each one's NOTIFY and
	// ORCPT, passed on to a next hop that offers DSN, which then
	// notifies the sender itself (RFC 3461 section 5.2.1).
	DSN []mail.RcptDSN
}

// Result is the outcome for one recipient.
type Result struct {
	Recipient string
	// Err is nil when the next hop accepted the message for Recipient,
	// otherwise the reason: the server's own reply when Remote is set, a
	// locally made one (connection failure, DNS) when it is empty.
	Err *mail.Error
	// Remote names the server that replied, as "host[address]".
	Remote string
	// Reply is the server's text accepting the message (a queue id).
	Reply string
	// TLS is the TLS version of the connection ("TLS1.3"), empty when
	// the message went in clear or no connection was made.
	TLS string
	// DSN reports that the next hop offers DSN and was given the
	// recipient's DSN parameters: it, not this client's caller, owes the
	// sender any further notification (RFC 3461 section 5.2.2).
	DSN bool
}

// Deliver opens a connection to hop, sends m and closes it.
func (c *Client) Deliver(ctx context.Context, hop NextHop, m *Message) []Result {
	cn, err := c.open(ctx, hop)
	if err != nil {
		return failAll(m.Recipients, err, "")
	}
	defer cn.Close()
	return cn.Send(ctx, m)
}

func failAll(rcpts []string, err *mail.Error, remote string) []Result {
	rs := make([]Result, len(rcpts))
	for i, r := range rcpts {
		rs[i] = Result{Recipient: r, Err: err, Remote: remote}
	}
	return rs
}

// target is one address to connect to.
type target struct {
	host    string // name used for TLS and in results
	network string
	addr    string
}

// Open connects to the first server of hop that answers, says EHLO (or
// LHLO), negotiates TLS and authenticates as configured. A non-nil error
// is always an *mail.Error (see AsError): permanent when the destination
// cannot ever work (null MX, no such domain), temporary otherwise.
func (c *Client) Open(ctx context.Context, hop NextHop) (*Conn, error) {
	cn, err := c.open(ctx, hop)
	if err != nil {
		return nil, err
	}
	return cn, nil
}

// AsError returns err as an *mail.Error: itself when it is one, else a
// temporary local failure carrying its text.
func AsError(err error) *mail.Error {
	if err == nil {
		return nil
	}
	var se *mail.Error
	if errors.As(err, &se) {
		return se
	}
	return temporary(4, 0, 0, err.Error())
}

func (c *Client) open(ctx context.Context, hop NextHop) (*Conn, *mail.Error) {
	domain := hop.Host
	if hop.MX && c.relay != nil {
		hop = *c.relay
	}
	req := TLSOpportunistic
	if hop.MX && c.opts.TLSPolicy != nil {
		r, err := c.opts.TLSPolicy.TLSRequirement(ctx, domain)
		if err != nil {
			return nil, temporary(4, 7, 5, "TLS policy for "+domain+" unavailable: "+err.Error())
		}
		req = r
	}
	var creds *Credentials
	if !hop.MX && !hop.Unix && c.opts.Credentials != nil {
		creds = c.opts.Credentials(hop.Host)
		if creds != nil {
			req = TLSVerify
		}
	}
	targets, terr := c.targets(ctx, hop)
	if terr != nil {
		return nil, terr
	}
	var last *mail.Error
	for _, t := range targets {
		cn, err := c.connect(ctx, hop, t, req, creds, false)
		if err == nil {
			return cn, nil
		}
		c.log.InfoContext(ctx, "outbound: connection failed", "host", t.host, "addr", t.addr, "err", err.Error())
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

// targets lists the addresses to try for hop, bounded by MaxAddresses.
func (c *Client) targets(ctx context.Context, hop NextHop) ([]target, *mail.Error) {
	if hop.Unix {
		return []target{{host: "localhost", network: "unix", addr: hop.Host}}, nil
	}
	port := hop.Port
	if port == 0 {
		switch {
		case hop.MX:
			port = c.opts.Port
		case hop.Protocol == SMTPS:
			port = 465
		default:
			port = 25
		}
	}
	hosts := []string{hop.Host}
	if hop.MX {
		var err error
		hosts, err = LookupMX(ctx, c.opts.Resolver, hop.Host)
		if err != nil {
			return nil, err.(*mail.Error)
		}
	}
	var out []target
	var last *mail.Error
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			out = append(out, target{host: h, network: "tcp", addr: net.JoinHostPort(ip.String(), strconv.Itoa(port))})
			continue
		}
		addrs, err := c.opts.Resolver.LookupIPAddr(ctx, h)
		if err != nil {
			last = temporary(4, 4, 3, "address lookup for "+h+" failed: "+err.Error())
			continue
		}
		for _, a := range addrs {
			out = append(out, target{host: h, network: "tcp", addr: net.JoinHostPort(a.IP.String(), strconv.Itoa(port))})
		}
		if len(out) >= c.opts.MaxAddresses {
			break
		}
	}
	if len(out) > c.opts.MaxAddresses {
		out = out[:c.opts.MaxAddresses]
	}
	if len(out) == 0 {
		if last == nil {
			last = temporary(4, 4, 4, "no address for "+hop.Host)
		}
		return nil, last
	}
	return out, nil
}

// Conn is one open connection to a next hop, ready for any number of
// messages in turn. It is not safe for concurrent use.
type Conn struct {
	c       *Client
	gc      *gosmtp.Client
	raw     net.Conn
	remote  string
	lmtp    bool
	tls     bool
	tlsVer  string // e.g. "TLS1.3", when tls
	broken  bool
	timeout time.Duration
}

// Remote names the server, as "host[address]".
func (cn *Conn) Remote() string { return cn.remote }

// TLS reports whether the connection is encrypted.
func (cn *Conn) TLS() bool { return cn.tls }

// Usable reports whether the connection can carry another message: false
// after a network error, a timeout or a 421 from the server.
func (cn *Conn) Usable() bool { return !cn.broken }

// Close ends the session with QUIT when it is still usable, and closes
// the connection.
func (cn *Conn) Close() error {
	if !cn.broken {
		cn.raw.SetDeadline(time.Now().Add(cn.timeout))
		if err := cn.gc.Quit(); err == nil {
			return nil
		}
	}
	return cn.gc.Close()
}

// watch makes ctx's cancellation interrupt blocking I/O on the connection;
// the returned function stops watching.
func watch(ctx context.Context, conn net.Conn) func() bool {
	return context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
}

// connect dials t and sets up the session: greeting, EHLO, STARTTLS, AUTH.
func (c *Client) connect(ctx context.Context, hop NextHop, t target, req TLSRequirement, creds *Credentials, noTLS bool) (*Conn, *mail.Error) {
	raw, err := c.opts.Dialer.DialContext(ctx, t.network, t.addr)
	if err != nil {
		return nil, temporary(4, 4, 1, "connect to "+t.host+": "+err.Error())
	}
	stop := watch(ctx, raw)
	defer stop()
	remote := t.host + "[" + t.addr + "]"
	if t.network == "tcp" {
		if h, _, err := net.SplitHostPort(t.addr); err == nil {
			remote = t.host + "[" + h + "]"
		}
	}
	cn := &Conn{c: c, raw: raw, remote: remote, lmtp: hop.Protocol == LMTP, timeout: c.opts.CommandTimeout}
	fail := func(e *mail.Error) (*Conn, *mail.Error) {
		raw.Close()
		return nil, e
	}
	conn := raw
	switch {
	case hop.Protocol == SMTPS:
		tc := tls.Client(raw, c.tlsConfig(t.host, req))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(temporary(4, 7, 5, "TLS handshake with "+remote+": "+err.Error()))
		}
		conn, cn.tls, cn.tlsVer = tc, true, tlsVersion(tc)
		cn.gc = gosmtp.NewClient(conn)
	case hop.Protocol == LMTP:
		cn.gc = gosmtp.NewClientLMTP(conn)
	default:
		pc, tlsOn, serr := c.startTLS(ctx, raw, t.host, remote, req, noTLS)
		if serr != nil {
			if serr.Code == tlsRetry {
				raw.Close()
				return c.connect(ctx, hop, t, req, creds, true)
			}
			return fail(serr)
		}
		conn, cn.tls = pc, tlsOn
		if rc, ok := pc.(*replayConn); ok {
			if tc, ok := rc.Conn.(*tls.Conn); ok {
				cn.tlsVer = tlsVersion(tc)
			}
		}
		cn.gc = gosmtp.NewClient(conn)
	}
	cn.raw = conn
	cn.gc.CommandTimeout = c.opts.CommandTimeout
	cn.gc.SubmissionTimeout = c.opts.DataTimeout
	if err := cn.gc.Hello(c.opts.Hostname); err != nil {
		return fail(remoteErr(err, "greeting or EHLO from "+remote))
	}
	if creds != nil {
		if !cn.tls {
			return fail(temporary(4, 7, 0, "refusing to send credentials to "+remote+" without TLS"))
		}
		if err := cn.auth(creds); err != nil {
			return fail(err)
		}
	}
	return cn, nil
}

func (cn *Conn) auth(creds *Credentials) *mail.Error {
	var err error
	switch {
	case cn.gc.SupportsAuth("PLAIN"):
		err = cn.gc.Auth(newPlain(creds))
	case cn.gc.SupportsAuth("LOGIN"):
		err = cn.gc.Auth(newLogin(creds))
	default:
		return temporary(4, 7, 0, cn.remote+" offers no AUTH mechanism we support (PLAIN, LOGIN)")
	}
	if err != nil {
		// A refused login is our configuration's fault, not the
		// message's: keep the message and retry later.
		e := remoteErr(err, "AUTH at "+cn.remote)
		return temporary(4, 7, 0, "authentication at "+cn.remote+" failed: "+e.Message)
	}
	return nil
}

// tlsConfig returns the configuration for a handshake with host.
func (c *Client) tlsConfig(host string, req TLSRequirement) *tls.Config {
	var cfg *tls.Config
	if c.opts.TLSConfig != nil {
		cfg = c.opts.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	cfg.ServerName = host
	// Opportunistic and encrypt-only TLS cannot check the name: most MX
	// certificates would fail, and plaintext would be the alternative.
	cfg.InsecureSkipVerify = req != TLSVerify
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// Send transmits m and returns one result per recipient, in order. After
// a network failure the results are temporary failures and Usable reports
// false.
func (cn *Conn) Send(ctx context.Context, m *Message) []Result {
	stop := watch(ctx, cn.raw)
	defer stop()
	res := make([]Result, len(m.Recipients))
	for i, r := range m.Recipients {
		res[i] = Result{Recipient: r, Remote: cn.remote, TLS: cn.tlsVer}
	}
	setAll := func(idx []int, e *mail.Error) {
		for _, i := range idx {
			res[i].Err = e
		}
	}
	all := make([]int, len(res))
	for i := range all {
		all[i] = i
	}
	if cn.broken {
		setAll(all, temporary(4, 4, 2, "connection to "+cn.remote+" lost"))
		return res
	}
	if err := ctx.Err(); err != nil {
		setAll(all, temporary(4, 4, 2, "delivery to "+cn.remote+" interrupted: "+err.Error()))
		return res
	}
	utf8 := m.SMTPUTF8
	if utf8 {
		if ok, _ := cn.gc.Extension("SMTPUTF8"); !ok && asciiOnly(m) {
			// Requested (a client sends SMTPUTF8 on any mail) but not
			// needed: nothing in the envelope or header is UTF-8, so
			// the message goes as it is, as Postfix delivers it.
			utf8 = false
		} else if !ok {
			code := gosmtp.EnhancedCode{5, 6, 9}
			what := "the message header holds UTF-8"
			if !isASCII(m.From) || !allASCII(m.Recipients) {
				code, what = gosmtp.EnhancedCode{5, 6, 7}, "the addresses hold UTF-8"
			}
			setAll(all, &mail.Error{Code: 553, EnhancedCode: code,
				Message: what + " but " + cn.remote + " does not support SMTPUTF8"})
			return res
		}
	}
	size := m.Body.Len()
	if max, ok := cn.gc.MaxMessageSize(); ok && max > 0 && size > int64(max) {
		setAll(all, &mail.Error{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 3, 4},
			Message: fmt.Sprintf("message of %d bytes exceeds the limit of %d of %s", size, max, cn.remote)})
		return res
	}
	dsn, _ := cn.gc.Extension("DSN")
	if err := cn.gc.Mail(m.From, mailOptions(m, size, utf8, dsn)); err != nil {
		setAll(all, cn.check(err, "MAIL"))
		return res
	}
	var accepted []int
	for i, r := range m.Recipients {
		res[i].DSN = dsn
		if err := cn.gc.Rcpt(r, rcptOptions(m, i, dsn)); err != nil {
			res[i].Err = cn.check(err, "RCPT")
			if cn.broken {
				setAll(all[i:], res[i].Err)
				return res
			}
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		if err := cn.gc.Reset(); err != nil {
			cn.check(err, "RSET")
		}
		return res
	}
	if err := ctx.Err(); err != nil {
		// go-smtp sets its own deadline per command, so a cancelled
		// ctx is checked between commands too.
		cn.broken = true
		setAll(accepted, temporary(4, 4, 2, "delivery to "+cn.remote+" interrupted: "+err.Error()))
		return res
	}
	w, err := cn.gc.Data()
	if err != nil {
		setAll(accepted, cn.check(err, "DATA"))
		return res
	}
	if serr := cn.copyBody(w, m.Body); serr != nil {
		setAll(accepted, serr)
		return res
	}
	if cn.lmtp {
		resp, err := w.CloseWithLMTPResponse()
		var perRcpt gosmtp.LMTPDataError
		errors.As(err, &perRcpt)
		for _, i := range accepted {
			r := m.Recipients[i]
			switch {
			case perRcpt[r] != nil:
				res[i].Err = perRcpt[r]
			case resp[r] != nil:
				res[i].Reply = resp[r].StatusText
			default:
				res[i].Err = cn.check(err, "end of data")
			}
		}
		return res
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		setAll(accepted, cn.check(err, "end of data"))
		return res
	}
	for _, i := range accepted {
		res[i].Reply = resp.StatusText
	}
	return res
}

// copyBody writes the message through the CRLF normaliser into the DATA
// writer. A local read error cannot be signalled inside DATA, so the
// connection is dropped to keep the server from accepting a truncated
// message.
func (cn *Conn) copyBody(w io.Writer, body mail.Body) *mail.Error {
	rc, err := body.Open()
	if err != nil {
		cn.broken = true
		cn.raw.Close()
		return temporary(4, 3, 0, "reading queued message: "+err.Error())
	}
	defer rc.Close()
	cw := newCRLFWriter(w)
	if _, err := io.Copy(cw, rc); err != nil {
		cn.broken = true
		cn.raw.Close()
		return temporary(4, 4, 2, "sending message to "+cn.remote+": "+err.Error())
	}
	if err := cw.Close(); err != nil {
		cn.broken = true
		cn.raw.Close()
		return temporary(4, 4, 2, "sending message to "+cn.remote+": "+err.Error())
	}
	return nil
}

// check turns a client error into a result, marking the connection
// unusable when the error was not a reply or was a 421.
func (cn *Conn) check(err error, stage string) *mail.Error {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		if se.Code == 421 {
			cn.broken = true
		}
		return se
	}
	cn.broken = true
	return temporary(4, 4, 2, "lost connection with "+cn.remote+" at "+stage+": "+err.Error())
}

// remoteErr turns an error from connection set-up into a result.
func remoteErr(err error, what string) *mail.Error {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	return temporary(4, 4, 2, what+": "+err.Error())
}

// asciiOnly reports whether m's envelope and header section are all
// ASCII. A body that cannot be read counts as not ASCII: the caller then
// refuses rather than sends.
func asciiOnly(m *Message) bool {
	if !isASCII(m.From) || !allASCII(m.Recipients) {
		return false
	}
	rc, err := m.Body.Open()
	if err != nil {
		return false
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A long header line: keep reading it in pieces.
		} else if err != nil && err != io.EOF {
			return false
		}
		for _, b := range line {
			if b >= 0x80 {
				return false
			}
		}
		if err == io.EOF || len(bytes.TrimRight(line, "\r\n")) == 0 && err == nil {
			return true // end of the header section (or of a body-less message)
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func allASCII(ss []string) bool {
	for _, s := range ss {
		if !isASCII(s) {
			return false
		}
	}
	return true
}

// tlsVersion names tc's negotiated version as Received fields and the
// log do: "TLS1.3".
func tlsVersion(tc *tls.Conn) string {
	return strings.ReplaceAll(tls.VersionName(tc.ConnectionState().Version), "TLS ", "TLS")
}

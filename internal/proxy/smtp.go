package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/auth"
)

// smtpReadTimeout bounds each command of an SMTP or LMTP client.
const smtpReadTimeout = 5 * time.Minute

var (
	errTempUnavailable = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 4, 1},
		Message: "Mail server unavailable, try again later"}
	errAuthRequired = &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0},
		Message: "Authentication required"}
)

// ServeSubmission relays the submission sessions accepted on ln
// (implicitTLS for a submissions listener) until Shutdown: a client
// authenticates here (AUTH PLAIN), and its session goes on at its
// backend's submission service, logged in as the same user.
func (p *Proxy) ServeSubmission(ln net.Listener, implicitTLS bool) error {
	if implicitTLS {
		ln = tls.NewListener(ln, p.opts.TLSConfig)
	}
	return p.serveSMTP(ln, false)
}

// ServeLMTP relays the LMTP deliveries accepted on ln until Shutdown:
// each recipient goes to its own backend's LMTP service, and each gets
// its backend's status.
func (p *Proxy) ServeLMTP(ln net.Listener) error {
	return p.serveSMTP(ln, true)
}

func (p *Proxy) serveSMTP(ln net.Listener, lmtp bool) error {
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &smtpSession{p: p, conn: c, lmtp: lmtp}, nil
	}))
	srv.LMTP = lmtp
	srv.Domain = p.opts.Hostname
	srv.TLSConfig = p.opts.TLSConfig
	srv.AllowInsecureAuth = p.opts.AllowInsecureAuth
	srv.MaxMessageBytes = p.opts.MaxMessageBytes
	srv.MaxRecipients = p.opts.MaxRecipients
	srv.MaxLineLength = 2000
	srv.ReadTimeout = smtpReadTimeout
	srv.WriteTimeout = smtpReadTimeout
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = slogPrinter{p}
	// The proxy's own accept loop feeds go-smtp, so that Shutdown and
	// the session count cover these listeners like the others.
	feed := &chanListener{addr: ln.Addr(), conns: make(chan net.Conn), closed: make(chan struct{})}
	go srv.Serve(feed)
	p.mu.Lock()
	p.closers = append(p.closers, srv.Close)
	p.mu.Unlock()
	return p.serve(ln, func(nc net.Conn) {
		if _, tcp := nc.RemoteAddr().(*net.TCPAddr); lmtp && tcp && !isTrusted(nc.RemoteAddr(), p.opts.LMTPNetworks) {
			p.log.Warn("proxy: LMTP client not allowed", "remote", nc.RemoteAddr().String())
			nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(nc, "554 5.7.1 Client host not allowed\r\n")
			return
		}
		c := &closeNotify{Conn: nc, done: make(chan struct{})}
		var fed net.Conn = c
		if !lmtp {
			g := &loginGuard{Conn: c, by: time.Now().Add(p.opts.LoginTimeout)}
			// Bounds the reads before go-smtp sets a deadline of its
			// own (an implicit-TLS listener's handshake) as well.
			g.SetReadDeadline(time.Time{})
			fed = g
		}
		select {
		case feed.conns <- fed:
			<-c.done
		case <-feed.closed:
			nc.Close()
		}
	})
}

// chanListener hands go-smtp the connections the proxy accepted.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// closeNotify closes done when the connection is first closed.
type closeNotify struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *closeNotify) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}

type slogPrinter struct{ p *Proxy }

func (l slogPrinter) Printf(format string, v ...any) {
	l.p.log.Warn("proxy: smtp: " + fmt.Sprintf(format, v...))
}
func (l slogPrinter) Println(v ...any) { l.p.log.Warn("proxy: smtp: " + fmt.Sprint(v...)) }

// smtpSession is a submission or LMTP client's session.
type smtpSession struct {
	p    *Proxy
	conn *gosmtp.Conn
	lmtp bool

	// Submission: the backend session of the authenticated user.
	be    *gosmtp.Client
	kickS *session

	// LMTP: the transaction, and a backend session per host.
	from     string
	mailOpts *gosmtp.MailOptions
	hosts    map[string]*lmtpBackend
	order    []string
}

type lmtpBackend struct {
	c      *gosmtp.Client
	err    error // dial or greeting failure: every recipient gets it
	mailed bool
	rcpts  []string
}

// smtpBackend connects to port on host for the client of conn, with
// STARTTLS when configured (and, for LMTP, offered), greets it and
// bounds its commands.
func (p *Proxy) smtpBackend(ctx context.Context, host string, port int, conn *gosmtp.Conn, lmtp bool) (*gosmtp.Client, error) {
	nc, err := p.dial(ctx, host, port, conn.Conn().RemoteAddr(), conn.Conn().LocalAddr(), !lmtp)
	if err != nil {
		return nil, err
	}
	var c *gosmtp.Client
	switch {
	case lmtp:
		// LMTP to the backends is plain text, as Postfix's to Dovecot
		// usually is: it stays on the nodes' private network.
		c = gosmtp.NewClientLMTP(nc)
		err = c.Hello(p.opts.Hostname)
	case p.opts.BackendTLS == StartTLS:
		cfg := p.opts.BackendTLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = hostOnly(host)
		}
		c, err = gosmtp.NewClientStartTLS(nc, cfg)
	default:
		c = gosmtp.NewClient(nc)
		err = c.Hello(p.opts.Hostname)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, host, err)
	}
	nc.SetDeadline(time.Time{})
	c.CommandTimeout = smtpReadTimeout
	c.SubmissionTimeout = 10 * time.Minute
	return c, nil
}

// AuthMechanisms implements gosmtp.AuthSession: PLAIN, whose password
// the proxy passes on to the backend.
func (s *smtpSession) AuthMechanisms() []string {
	if s.lmtp {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth implements gosmtp.AuthSession.
func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	if s.lmtp || mech != sasl.Plain {
		return nil, &gosmtp.SMTPError{Code: 504, EnhancedCode: gosmtp.EnhancedCode{5, 5, 4}, Message: "Unsupported mechanism"}
	}
	srv := sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "Not authorized to act as that user"}
		}
		err := s.login(username, password)
		if err == nil {
			if g := guardOf(s.conn.Conn()); g != nil {
				g.loggedIn()
			}
		}
		return err
	})
	return &countedSASL{Server: srv, g: guardOf(s.conn.Conn()), max: s.p.opts.MaxAuthFailures}, nil
}

var (
	errAuthFailed  = &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "Authentication failed"}
	errAuthTooMany = &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0}, Message: "Too many authentication failures, closing connection"}
)

// countedSASL counts the failed logins of a submission connection, as
// the backends and the proxy's IMAP and POP3 do: the one that reaches
// MaxAuthFailures is answered 421 and the connection closed. A response
// PLAIN cannot parse is such a failure (535), never go-sasl's own error
// text, which go-smtp would send as a temporary 454.
type countedSASL struct {
	sasl.Server
	g   *loginGuard
	max int
}

func (c *countedSASL) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := c.Server.Next(resp)
	if err == nil {
		return ch, done, nil
	}
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) {
		se = errAuthFailed
	}
	if se.Code == 535 && c.g != nil && c.g.failed(c.max) {
		return nil, true, errAuthTooMany
	}
	return nil, true, se
}

// loginGuard is a submission client's connection until it logs in:
// reads end LoginTimeout after the connect, however often go-smtp
// renews its per-command deadline (a client sending NOOPs, or a byte
// now and then, is cut off as on the backends), and it counts failed
// logins; the reply to the last one allowed closes it.
type loginGuard struct {
	net.Conn
	mu        sync.Mutex
	by        time.Time // zero once logged in
	fails     int
	closeNext bool
}

func (g *loginGuard) clamp(t time.Time) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.by.IsZero() && (t.IsZero() || t.After(g.by)) {
		return g.by
	}
	return t
}

func (g *loginGuard) SetReadDeadline(t time.Time) error { return g.Conn.SetReadDeadline(g.clamp(t)) }

func (g *loginGuard) SetDeadline(t time.Time) error {
	if err := g.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return g.Conn.SetReadDeadline(g.clamp(t))
}

func (g *loginGuard) Write(b []byte) (int, error) {
	n, err := g.Conn.Write(b)
	g.mu.Lock()
	closeNow := g.closeNext
	g.mu.Unlock()
	if closeNow {
		g.Conn.Close()
	}
	return n, err
}

func (g *loginGuard) loggedIn() {
	g.mu.Lock()
	g.by = time.Time{}
	g.mu.Unlock()
}

// failed counts a failed login and reports whether it is the max-th:
// then the next write, its reply, closes the connection.
func (g *loginGuard) failed(max int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fails++
	g.closeNext = g.fails >= max
	return g.closeNext
}

// guardOf finds the loginGuard under nc (go-smtp's connection, TLS over
// it after STARTTLS).
func guardOf(nc net.Conn) *loginGuard {
	for {
		switch c := nc.(type) {
		case *loginGuard:
			return c
		case *tls.Conn:
			nc = c.NetConn()
		default:
			return nil
		}
	}
}

// login checks the credentials here, then logs in at the user's backend.
func (s *smtpSession) login(user, pass string) error {
	p := s.p
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.LoginTimeout)
	defer cancel()
	u, err := p.opts.Auth.Authenticate(ctx, user, pass, s.conn.Conn().RemoteAddr())
	switch {
	case err == nil:
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrAuthzRefused), errors.Is(err, auth.ErrMalformedResponse):
		return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "Authentication failed"}
	case errors.Is(err, auth.ErrThrottled):
		return &gosmtp.SMTPError{Code: 454, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0}, Message: "Too many failed logins, try again later"}
	default:
		p.log.Warn("proxy: login check failed", "proto", "submission", "err", err)
		return &gosmtp.SMTPError{Code: 454, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0}, Message: "Authentication temporarily unavailable"}
	}
	host, err := p.Route(ctx, u.Address)
	var c *gosmtp.Client
	if err == nil {
		c, err = p.smtpBackend(ctx, host, p.opts.Ports.Submission, s.conn, false)
	}
	if err == nil {
		if err = c.Auth(sasl.NewPlainClient("", u.Address, pass)); err != nil {
			c.Close()
			var se *gosmtp.SMTPError
			if errors.As(err, &se) && se.Code/100 == 5 {
				return se
			}
		}
	}
	if err != nil {
		p.log.Warn("proxy: backend unavailable", "proto", "submission", "user", u.Address, "backend", host, "err", err)
		return errTempUnavailable
	}
	s.be = c
	s.kickS = &session{p: p, key: userKey(u.Address), client: s.conn.Conn(), backend: nopCloser{c}}
	s.kickS.register()
	p.log.Info("proxy: login", "proto", "submission", "user", u.Address, "remote", s.conn.Conn().RemoteAddr().String(), "backend", host)
	return nil
}

// nopCloser lets a go-smtp client stand for a session's backend
// connection, which a kick closes.
type nopCloser struct{ c *gosmtp.Client }

func (n nopCloser) Close() error                       { return n.c.Close() }
func (n nopCloser) Read([]byte) (int, error)           { return 0, io.EOF }
func (n nopCloser) Write(b []byte) (int, error)        { return len(b), nil }
func (n nopCloser) LocalAddr() net.Addr                { return nil }
func (n nopCloser) RemoteAddr() net.Addr               { return nil }
func (n nopCloser) SetDeadline(time.Time) error        { return nil }
func (n nopCloser) SetReadDeadline(time.Time) error    { return nil }
func (n nopCloser) SetWriteDeadline(t time.Time) error { return nil }

// Mail implements gosmtp.Session.
func (s *smtpSession) Mail(from string, opts *gosmtp.MailOptions) error {
	if s.lmtp {
		s.from, s.mailOpts = from, opts
		return nil
	}
	if s.be == nil {
		return errAuthRequired
	}
	return backendErr(s.be.Mail(from, opts))
}

// Rcpt implements gosmtp.Session: for LMTP, the recipient goes to its
// own backend, which answers for it.
func (s *smtpSession) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if !s.lmtp {
		if s.be == nil {
			return errAuthRequired
		}
		return backendErr(s.be.Rcpt(to, opts))
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.p.opts.LoginTimeout)
	defer cancel()
	host, err := s.p.Route(ctx, to)
	if err != nil {
		s.p.log.Warn("proxy: no route", "proto", "lmtp", "rcpt", to, "err", err)
		return errTempUnavailable
	}
	b := s.hosts[host]
	if b == nil {
		b = &lmtpBackend{}
		b.c, b.err = s.p.smtpBackend(ctx, host, s.p.opts.Ports.LMTP, s.conn, true)
		if b.err != nil {
			s.p.log.Warn("proxy: backend unavailable", "proto", "lmtp", "backend", host, "err", b.err)
		}
		if s.hosts == nil {
			s.hosts = map[string]*lmtpBackend{}
		}
		s.hosts[host] = b
		s.order = append(s.order, host)
	}
	if b.err != nil {
		return errTempUnavailable
	}
	if !b.mailed {
		if err := b.c.Mail(s.from, s.mailOpts); err != nil {
			return backendErr(err)
		}
		b.mailed = true
	}
	if err := b.c.Rcpt(to, opts); err != nil {
		return backendErr(err)
	}
	b.rcpts = append(b.rcpts, to)
	return nil
}

// backendErr passes a backend's SMTP reply on; anything else (a
// connection lost) is a temporary failure.
func backendErr(err error) error {
	var se *gosmtp.SMTPError
	if err == nil || errors.As(err, &se) {
		return err
	}
	return errTempUnavailable
}

// Data implements gosmtp.Session.
func (s *smtpSession) Data(r io.Reader) error {
	if s.lmtp {
		var first error
		err := s.LMTPData(r, statusFunc(func(_ string, err error) {
			if first == nil {
				first = err
			}
		}))
		if first != nil {
			return first
		}
		return err
	}
	if s.be == nil {
		return errAuthRequired
	}
	w, err := s.be.Data()
	if err != nil {
		return backendErr(err)
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return backendErr(err)
	}
	return backendErr(w.Close())
}

type statusFunc func(string, error)

func (f statusFunc) SetStatus(rcpt string, err error) { f(rcpt, err) }

// LMTPData implements gosmtp.LMTPSession: the message goes to each
// backend that accepted recipients, each recipient getting its own
// backend's status. With several backends the message is read into
// memory first (MaxMessageBytes bounds it).
func (s *smtpSession) LMTPData(r io.Reader, status gosmtp.StatusCollector) error {
	var used []*lmtpBackend
	for _, h := range s.order {
		if b := s.hosts[h]; b.err == nil && len(b.rcpts) > 0 {
			used = append(used, b)
		}
	}
	var body []byte
	if len(used) > 1 {
		var err error
		if body, err = io.ReadAll(r); err != nil {
			return err
		}
	}
	for _, b := range used {
		src := r
		if body != nil {
			src = bytes.NewReader(body)
		}
		err := sendLMTP(b.c, src)
		for _, rcpt := range b.rcpts {
			var rerr error
			var lerr gosmtp.LMTPDataError
			switch {
			case errors.As(err, &lerr):
				if e, ok := lerr[rcpt]; ok {
					rerr = e
				}
			case err != nil:
				rerr = backendErr(err)
			}
			status.SetStatus(rcpt, rerr)
		}
	}
	return nil
}

// sendLMTP sends the message to c's recipients.
func sendLMTP(c *gosmtp.Client, r io.Reader) error {
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	_, err = w.CloseWithLMTPResponse()
	return err
}

// Reset implements gosmtp.Session.
func (s *smtpSession) Reset() {
	if s.be != nil {
		s.be.Reset()
	}
	for _, b := range s.hosts {
		if b.err == nil && b.mailed {
			if err := b.c.Reset(); err != nil {
				b.err = err
			}
		}
		b.mailed, b.rcpts = false, nil
	}
	// A backend that failed is tried again in the next transaction.
	for h, b := range s.hosts {
		if b.err != nil {
			if b.c != nil {
				b.c.Close()
			}
			delete(s.hosts, h)
		}
	}
	s.order = s.order[:0]
	for h := range s.hosts {
		s.order = append(s.order, h)
	}
	s.from, s.mailOpts = "", nil
}

// Logout implements gosmtp.Session.
func (s *smtpSession) Logout() error {
	if s.kickS != nil {
		s.kickS.unregister()
	}
	if s.be != nil {
		s.be.Quit()
	}
	for _, b := range s.hosts {
		if b.c != nil {
			b.c.Quit()
		}
	}
	return nil
}

package smtp

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/mailagent/mailagent/internal/readclock"
	"github.com/mailagent/mailagent/smtp/mail"
)

// drainQuitWait bounds how long a connection whose transaction finished
// during Shutdown waits for the client's next command (QUIT, normally).
const drainQuitWait = 10 * time.Second

// Replies the connection gives itself, in place of go-smtp's reply to a
// command it handed go-smtp instead of the client's, or of a go-smtp
// reply it corrects.
const (
	replyStartTLS     = "220 2.0.0 Ready to start TLS\r\n"
	replyNoTLS        = "502 5.5.1 TLS not supported\r\n"
	replyTLSActive    = "502 5.5.1 Already running in TLS\r\n"
	replyTLSSyntax    = "501 5.5.4 Syntax: STARTTLS\r\n"
	replyShuttingDown = "421 4.3.2 Service shutting down\r\n"
	replyJunk         = "421 4.7.0 Too many commands without a message, closing connection\r\n"
	replyBadBase64    = "501 5.5.2 Invalid base64 data\r\n"
	replyAuthTooMany  = "421 4.7.0 Too many authentication failures, closing connection\r\n"
)

// goSMTPBadBase64 is go-smtp's reply to a SASL response that is not
// base64; RFC 4954 wants 501, and it is a failed login like any other.
var goSMTPBadBase64 = []byte("454 4.7.0 Invalid base64 data\r\n")

// conn is every accepted connection, and what go-smtp reads and writes:
// go-smtp only ever sees plaintext, because TLS (STARTTLS and implicit)
// runs here, below it. Reads go through the scanner (see scanner), which
// needs the plaintext; writes are watched for the replies that change
// the framing (354, 334). conn also sets the read deadline of each read
// from the connection's readclock (a whole command line within
// ReadTimeout, DATA and BDAT at MinDataRate, submission's login within
// LoginTimeout; see deadline.go) and answers its expiry itself, can
// close the connection right after the next reply, and
// carries what must outlive a go-smtp session: the transaction state
// Shutdown needs and the count of authentication failures.
//
// STARTTLS never reaches go-smtp. The connection hands it RSET instead
// (so that the transaction state is dropped, as RFC 3207 requires),
// writes 220 in place of RSET's reply, discards whatever the client sent
// after STARTTLS, and runs the handshake before the next read. The
// session notices the new TLS state (see session.sync) and asks for
// EHLO again. STARTTLS is added to the EHLO reply here, since go-smtp,
// which has no TLS configuration, does not offer it.
type conn struct {
	net.Conn // the socket
	srv      *Server

	offerTLS bool // STARTTLS is offered (TLS configured, not implicit)

	// Read side; only go-smtp's reading goroutine uses these.
	buf  []byte // input buffer
	in   []byte // scanned input not yet consumed (in buf)
	pend []byte // bytes for go-smtp not yet read
	rerr error  // sticky read error

	wmu sync.Mutex // serialises writes

	mu         sync.Mutex
	sc         *scanner
	tls        *tls.Conn // nil before TLS
	epoch      int       // counts TLS starts, for the session to notice
	needHelo   bool      // STARTTLS done, no EHLO since
	route      bool      // the last MAIL or RCPT line had a source route
	replace    string    // reply to write instead of go-smtp's next one
	startTLS   bool      // handshake before the next read
	ehlo       bool      // the next reply answers EHLO
	midLine    bool      // the last write ended inside a reply line
	closeAfter bool      // close once the next reply is written
	busy       bool      // between MAIL and the end of the transaction
	draining   bool      // Shutdown asked this connection to end
	closed     bool
	silent     bool             // a timeout was answered: go-smtp's replies are dropped
	sessLog    *slog.Logger     // the latest session's logger, with its ID; nil before EHLO
	clock      *readclock.Clock // read deadlines; used by the reading side
	authFails  int
	rcptFails  int               // recipients refused for good (MaxRecipientErrors)
	junk       int               // commands that deliver nothing since the last message (MaxJunkCommands)
	results    []mail.AuthResult // connect-check results, kept across STARTTLS
	values     map[any]any       // connect-check values, likewise
	extra      []string          // connect-check header fields
	checked    bool              // connect checks have run
}

func newConn(nc net.Conn, s *Server) *conn {
	o := &s.opts
	pm := o.PostmasterDomain
	if pm == "" {
		pm = o.Hostname
	}
	c := &conn{
		Conn:     nc,
		srv:      s,
		offerTLS: o.TLSConfig != nil && !o.ImplicitTLS,
		buf:      make([]byte, max(2*o.MaxLineLength, 8<<10)),
		sc:       newScanner(o.MaxLineLength, "postmaster@"+pm),
		clock:    readclock.New(s.readLimits(), time.Now()),
	}
	if o.ImplicitTLS {
		c.tls = tls.Server(nc, o.TLSConfig)
	}
	return c
}

// Read hands go-smtp the scanned client input.
func (c *conn) Read(p []byte) (int, error) {
	for {
		if len(c.pend) > 0 {
			n := copy(p, c.pend)
			c.pend = c.pend[n:]
			return n, nil
		}
		if c.rerr != nil {
			return 0, c.rerr
		}
		c.mu.Lock()
		hs := c.startTLS
		c.mu.Unlock()
		if hs {
			c.handshake()
			continue
		}
		if len(c.in) > 0 {
			c.mu.Lock()
			used, out, cmd, err := c.sc.next(c.in)
			if cmd != nil {
				out = c.commandLocked(cmd, out)
			}
			if used > 0 && !c.sc.inMessage() {
				// A command or SASL line is complete; the next one
				// gets its own time.
				c.clock.EndLine()
			}
			c.mu.Unlock()
			if err != nil {
				c.rerr = err
				continue
			}
			if used > 0 {
				c.in = c.in[used:]
				c.pend = out
				continue
			}
		}
		c.rerr = c.fill()
	}
}

// commandLocked decides what go-smtp gets for a command line.
func (c *conn) commandLocked(cmd *command, line []byte) []byte {
	if cmd.verb == "MAIL" || cmd.verb == "RCPT" {
		c.route = cmd.route
	}
	switch {
	case c.junkLocked(cmd.verb):
		// Told, and closed once the reply is written; go-smtp's own
		// answer to the NOOP it gets is replaced.
		c.replace, c.closeAfter = replyJunk, true
	case c.draining && !c.busy && cmd.verb != "QUIT":
		// The transaction Shutdown waited for is over: QUIT gets its
		// 221, anything else is told the server is going away.
		c.replace = replyShuttingDown
		return []byte("QUIT\r\n")
	case cmd.refuse != "":
		// A line go-smtp would take but must not: a HELO argument
		// that cannot be data (it is echoed and written into
		// headers). go-smtp gets NOOP, which changes nothing.
		c.replace = cmd.refuse
	case !cmd.startTLS:
		c.ehlo = cmd.verb == "EHLO" || cmd.verb == "LHLO"
		return line
	case c.tls != nil:
		c.replace = replyTLSActive
	case !c.offerTLS:
		c.replace = replyNoTLS
	case cmd.tlsArgs:
		c.replace = replyTLSSyntax
	default:
		c.replace = replyStartTLS
		return []byte("RSET\r\n")
	}
	return []byte("NOOP\r\n")
}

// fill reads more input, with the deadline the clock gives. When it
// expires, the client is told why and the connection ends (expire).
func (c *conn) fill() error {
	if len(c.in) > 0 && &c.in[0] != &c.buf[0] {
		n := copy(c.buf, c.in)
		c.in = c.buf[:n]
	} else if len(c.in) == 0 {
		c.in = c.buf[:0]
	}
	now := time.Now()
	c.mu.Lock()
	inMessage := c.sc.inMessage()
	c.clock.SetData(inMessage)
	d := c.clock.Deadline(now)
	cause := c.clock.Cause()
	if c.draining && !c.busy {
		if q := now.Add(drainQuitWait); d.IsZero() || q.Before(d) {
			// go-smtp answers this one: 421 4.4.2.
			d, cause = q, readclock.None
		}
	}
	r := c.stream()
	c.mu.Unlock()
	if err := c.Conn.SetReadDeadline(d); err != nil {
		return err
	}
	n, err := r.Read(c.buf[len(c.in):cap(c.buf)])
	c.in = c.buf[:len(c.in)+n]
	if n > 0 {
		c.mu.Lock()
		c.clock.Read(n)
		c.mu.Unlock()
		return nil // an error comes back on the next read
	}
	switch {
	case cause != readclock.None && errors.Is(err, os.ErrDeadlineExceeded):
		c.expire(cause)
	case inMessage && errors.Is(err, io.EOF):
		// The client left inside DATA or a BDAT chunk. io.EOF would
		// let go-smtp take a short last chunk for a whole one.
		err = io.ErrUnexpectedEOF
	}
	return err
}

// handshake runs the TLS handshake STARTTLS announced. Input the client
// sent before it is discarded: it was not protected by TLS.
func (c *conn) handshake() {
	c.in = c.buf[:0]
	c.pend = nil
	t := tls.Server(c.Conn, c.srv.opts.TLSConfig)
	c.mu.Lock()
	d := c.clock.Deadline(time.Now())
	c.mu.Unlock()
	_ = c.Conn.SetDeadline(d)
	err := t.Handshake()
	_ = c.Conn.SetWriteDeadline(time.Time{})
	c.mu.Lock()
	c.startTLS = false
	if err == nil {
		c.tls = t
		c.epoch++
		c.needHelo = true
		c.sc = newScanner(c.sc.maxLine, c.sc.postmaster)
	}
	c.mu.Unlock()
	if err != nil {
		c.srv.log.Info("TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		c.rerr = io.EOF
	}
}

// Write writes go-smtp's replies, with the changes described on conn,
// and, when a reply was marked as the last one, closes the connection
// after it. go-smtp writes each reply line with one flush, so a write
// holds whole lines; a line split over writes is passed on as it is.
func (c *conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.silent {
		c.mu.Unlock()
		return len(b), nil
	}
	out := c.filterLocked(b)
	w := c.stream()
	last := c.closeAfter
	c.mu.Unlock()
	var err error
	if len(out) > 0 {
		_, err = w.Write(out)
	}
	if last {
		c.Close()
	}
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// stream is what the client's bytes travel through: the TLS connection
// once there is one, the socket before. c.mu must be held.
func (c *conn) stream() io.ReadWriter {
	if c.tls != nil {
		return c.tls
	}
	return c.Conn
}

// filterLocked applies the reply changes to b and tells the scanner the
// replies it needs.
func (c *conn) filterLocked(b []byte) []byte {
	orig := b
	var out []byte
	changed := false
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line = b[:i+1]
		}
		b = b[len(line):]
		start := !c.midLine
		c.midLine = line[len(line)-1] != '\n'
		if !start {
			out = append(out, line...)
			continue
		}
		code, final := replyCode(line)
		if c.replace != "" {
			// A reply given in place of go-smtp's.
			changed = true
			if final {
				out = append(out, c.replace...)
				if c.replace == replyStartTLS {
					c.startTLS = true
				}
				c.replace = ""
			}
			continue
		}
		if bytes.Equal(line, goSMTPBadBase64) {
			line = c.badBase64Locked()
			code, final = replyCode(line)
			changed = true
		}
		out = append(out, line...)
		if c.ehlo {
			c.ehlo = false
			if code == 250 && !final && c.offerTLS && c.tls == nil {
				out = append(out, "250-STARTTLS\r\n"...)
				changed = true
			}
		}
		if final {
			if code == 250 && (c.sc.verb == "EHLO" || c.sc.verb == "HELO" || c.sc.verb == "LHLO") {
				c.needHelo = false
			}
			c.sc.reply(code)
		}
	}
	if !changed {
		return orig
	}
	return out
}

// replyCode reads a reply line's code and whether it is the reply's last
// line.
func replyCode(line []byte) (int, bool) {
	if len(line) < 3 {
		return 0, true
	}
	code := 0
	for _, d := range line[:3] {
		if d < '0' || d > '9' {
			return 0, true
		}
		code = code*10 + int(d-'0')
	}
	return code, len(line) == 3 || line[3] != '-'
}

// Close closes the connection once and releases its limit slots.
func (c *conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	err := c.Conn.Close()
	c.srv.track.Done(c)
	return err
}

// tlsState is the connection's TLS state, nil before TLS.
func (c *conn) tlsState() *tls.ConnectionState {
	c.mu.Lock()
	t := c.tls
	c.mu.Unlock()
	if t == nil {
		return nil
	}
	st := t.ConnectionState()
	if !st.HandshakeComplete {
		return nil
	}
	return &st
}

// tlsEpoch counts the TLS starts of the connection; helloNeeded reports
// a STARTTLS with no EHLO since.
func (c *conn) tlsEpoch() (epoch int, helloNeeded bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch, c.needHelo
}

// sourceRouted reports whether the MAIL or RCPT line being handled had
// a source route, which go-smtp has removed from the path it passes on.
func (c *conn) sourceRouted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.route
}

// dataVerdict is the refusal the message just received deserves for its
// bytes (bare CR or LF, NUL), or nil.
func (c *conn) dataVerdict() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.sc.verdict(); v != nil {
		return v
	}
	return nil
}

// junkLocked counts a command that delivers nothing and tells whether
// it is one past MaxJunkCommands.
func (c *conn) junkLocked(verb string) bool {
	o := &c.srv.opts
	if o.MaxJunkCommands <= 0 || o.Role == LMTP {
		return false
	}
	switch verb {
	case "NOOP", "RSET", "VRFY", "EXPN", "ETRN", "HELP":
		c.junk++
		return c.junk > o.MaxJunkCommands
	}
	return false
}

// messageAccepted starts the count of MaxJunkCommands again.
func (c *conn) messageAccepted() {
	c.mu.Lock()
	c.junk = 0
	c.mu.Unlock()
}

// badBase64Locked counts a SASL response that was not base64 as a
// failed login and gives the reply; the last one allowed ends the
// connection.
func (c *conn) badBase64Locked() []byte {
	c.authFails++
	if c.sessLog != nil {
		c.sessLog.Info("authentication refused: response not base64", "failures", c.authFails)
	}
	if c.authFails >= c.srv.opts.MaxAuthFailures {
		c.closeAfter = true
		return []byte(replyAuthTooMany)
	}
	return []byte(replyBadBase64)
}

// endAfterReply marks the next reply as the connection's last.
func (c *conn) endAfterReply() {
	c.mu.Lock()
	c.closeAfter = true
	c.mu.Unlock()
}

// beginTxn marks a transaction in flight; it fails when the server is
// draining, so that no transaction starts after Shutdown.
func (c *conn) beginTxn() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		c.closeAfter = true
		return false
	}
	c.busy = true
	return true
}

// endTxn marks the transaction finished. When Shutdown is waiting, the
// connection ends at the client's next command: QUIT is answered 221,
// anything else 421 (see commandLocked).
func (c *conn) endTxn() {
	c.mu.Lock()
	c.busy = false
	c.mu.Unlock()
}

// Drain is Shutdown's request: an idle connection is told 421 and
// closed at once, a busy one after its transaction.
func (c *conn) Drain() {
	c.mu.Lock()
	c.draining = true
	idle := !c.busy && !c.closed
	c.mu.Unlock()
	if idle {
		c.wmu.Lock()
		c.mu.Lock()
		w := c.stream()
		c.mu.Unlock()
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = w.Write([]byte(replyShuttingDown))
		c.wmu.Unlock()
		c.Close()
	}
}

// listener applies the connection limits and wraps accepted
// connections.
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
		c, refusal := l.srv.admit(nc)
		if c == nil {
			var tc *tls.Config
			if l.srv.opts.ImplicitTLS {
				tc = l.srv.opts.TLSConfig
			}
			l.srv.track.Refuse(nc, tc, refusal)
			continue
		}
		if c.tls != nil {
			// The handshake runs in the greeting's write: bound its
			// reads too.
			_ = nc.SetReadDeadline(c.clock.Deadline(time.Now()))
		}
		return c, nil
	}
}

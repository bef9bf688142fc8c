package imap

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/internal/readclock"
)

// writeBufSize is the size of a connection's response buffer: responses
// gather there and go out in one write per command (or per buffer). It
// is pooled, held only while answering.
const writeBufSize = 64 << 10

// readBufSize is the size of a connection's command buffer.
const readBufSize = 1 << 10

// writeTimeout bounds each write of responses to a client that does not
// read them.
const writeTimeout = 5 * time.Minute

// connState is IMAP's connection state (RFC 9051 section 3).
type connState uint8

const (
	stateNotAuth connState = 1 << iota
	stateAuth
	stateSelected
	stateLogout
)

// conn is one client connection: the protocol engine's loop of reading
// a command, answering it and the mailbox's news.
type conn struct {
	srv *Server
	raw net.Conn // the socket
	nc  net.Conn // raw, or TLS over it
	id  string   // the session's ID in logs

	br *bufio.Reader
	r  *imapwire.Reader
	w  *imapwire.Writer
	bw *bufio.Writer // from Server.writeBufs while answering, else nil
	dw deadlineWriter

	isTLS      bool
	compressed bool          // COMPRESS=DEFLATE is on (compress.go)
	inflate    io.ReadCloser // the client's stream, decompressed
	deflate    *flate.Writer // the responses' compressor, while answering
	state      connState
	sess       *session
	rev2       bool // ENABLE IMAP4rev2
	utf8       bool // mailbox names in UTF-8: ENABLE UTF8=ACCEPT or IMAP4rev2
	utf8Accept bool // ENABLE UTF8=ACCEPT itself
	condstore  bool // CONDSTORE enabled (RFC 7162 section 3.1): FETCH responses carry MODSEQ
	qresync    bool // QRESYNC enabled (RFC 7162 section 3.2): VANISHED for EXPUNGE
	uidOnly    bool // UIDONLY enabled (RFC 9586): no sequence numbers either way (uidonly.go)
	failures   int32
	badCmds    int
	bye        string // said after the current command's reply, then the connection closes

	mu       sync.Mutex
	clock    *readclock.Clock // read deadlines (deadline.go)
	expired  readclock.Cause  // the read limit the client ran into
	stopping bool             // Shutdown asked for a BYE
	waiting  bool             // blocked reading a command or in IDLE: Shutdown may interrupt
	closed   bool
}

func newConn(s *Server, nc net.Conn) *conn {
	var id [6]byte
	rand.Read(id[:])
	c := &conn{srv: s, raw: nc, nc: nc, id: hex.EncodeToString(id[:]), state: stateNotAuth,
		clock: readclock.New(s.readLimits(), time.Now())}
	c.dw.c = c
	return c
}

// deadlineWriter writes to the connection with a deadline per write.
type deadlineWriter struct{ c *conn }

func (d deadlineWriter) Write(p []byte) (int, error) {
	if d.c.compressed {
		return d.c.deflater().Write(p)
	}
	d.c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return d.c.nc.Write(p)
}

// serve runs the connection to its end.
func (c *conn) serve() {
	defer c.close()
	defer func() {
		// A bug in one session ends that session, not the server.
		if v := recover(); v != nil {
			c.srv.log.Error("imap: panic serving a connection", "session", c.id, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	// Bounds a TLS handshake too: a client that never says hello goes
	// at the login timeout.
	c.raw.SetReadDeadline(c.clock.Deadline(time.Now()))
	if c.srv.opts.ImplicitTLS {
		tc := tls.Server(c.raw, c.srv.opts.TLSConfig)
		if err := tc.HandshakeContext(c.srv.ctx); err != nil {
			c.srv.log.Debug("imap: TLS handshake", "session", c.id, "remote", c.remote(), "err", err)
			return
		}
		c.nc, c.isTLS = tc, true
	}
	c.br = bufio.NewReaderSize(clockedReader{c}, readBufSize)
	c.r = imapwire.NewReader(c.br, c.continueLiteral)
	c.r.Limits = c.limits()
	c.r.Check = c.checkCommand
	c.w = imapwire.NewWriter(nil)
	c.srv.log.Debug("imap: connection", "session", c.id, "remote", c.remote(), "tls", c.isTLS)
	c.startWrite()
	c.w.Status("", imap.StatusResponseTypeOK, "CAPABILITY "+c.capabilities(), "mailagent IMAP server ready")
	if c.flush() != nil {
		return
	}
	for c.state != stateLogout {
		if !c.readAndAnswer() {
			return
		}
	}
}

// limits returns the parser's limits for this server.
func (c *conn) limits() imapwire.Limits {
	return imapwire.Limits{AppendLimit: int64(c.srv.opts.AppendLimit), LiteralPlus: true}
}

// remote is the client's address for logs.
func (c *conn) remote() string { return c.raw.RemoteAddr().String() }

// readAndAnswer reads one command and answers it; false ends the
// connection.
func (c *conn) readAndAnswer() bool {
	if !c.beginWait() {
		c.sayBye("Server shutting down")
		return false
	}
	c.awaitCommand() // NOTIFY's news meanwhile (notify.go)
	cmd, err := c.r.ReadCommand()
	stopping := c.endWait()
	c.startWrite()
	if err != nil {
		var e *imapwire.Error
		if !errors.As(err, &e) {
			c.readFailed(err, stopping)
			return false
		}
		return c.refused(e)
	}
	c.answer(cmd)
	if c.expiredCause() != readclock.None {
		c.readFailed(net.ErrClosed, false)
		return false
	}
	if c.bye != "" {
		c.sayBye(c.bye)
		if c.r.Refused() {
			c.lingerClose() // the replies reach the client, not a reset
		}
		return false
	}
	if c.state == stateLogout {
		c.flush()
		return false
	}
	if c.pipelined() {
		return true // answered with the commands that follow
	}
	return c.flush() == nil
}

// readFailed ends a connection whose read failed: BYE for Shutdown or a
// read limit, nothing for a client that went away.
func (c *conn) readFailed(err error, stopping bool) {
	switch {
	case stopping:
		c.sayBye("Server shutting down")
	case c.expiredCause() != readclock.None:
		c.srv.log.Info("imap: connection timed out", "session", c.id, "remote", c.remote(), "cause", c.expiredCause().String())
		c.sayBye(c.expiredText())
	default:
		c.srv.log.Debug("imap: connection ended", "session", c.id, "err", err)
	}
}

// refused answers a command the parser refused.
func (c *conn) refused(e *imapwire.Error) bool {
	if e.Save && c.sess != nil && c.sess.sel != nil {
		// RFC 5182 section 2.1: a failed SEARCH with SAVE empties "$".
		c.sess.sel.searchRes = imap.UIDSet{}
	}
	c.w.Status(e.Tag, e.Type, string(e.Code), e.Text)
	if e.Close {
		c.sayBye("Command or literal too large, closing the connection")
		c.lingerClose()
		return false
	}
	if c.state == stateNotAuth && e.Type == imap.StatusResponseTypeBad && e.Code == "" {
		// Before login, what is not IMAP (an HTTP request sent to the
		// port) ends the connection: an unknown command at once, bad
		// syntax the tenth time.
		if c.badCmds++; c.badCmds >= 10 || e.Text == "Unknown command" {
			c.sayBye("Too many invalid commands")
			return false
		}
	}
	return c.pipelined() || c.flush() == nil
}

// pipelined reports whether a whole further command line is buffered:
// its answer may go out with this one's.
func (c *conn) pipelined() bool {
	n := c.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := c.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// lingerClose reads for a moment what the client sent on before the
// connection closes, so that the replies reach it rather than a reset
// for unread data.
func (c *conn) lingerClose() {
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok && !c.isTLS && cw.CloseWrite() == nil {
		c.raw.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.CopyN(io.Discard, c.raw, 1<<20)
	}
}

// continueLiteral asks for a synchronizing literal.
func (c *conn) continueLiteral() error {
	c.startWrite()
	c.w.Continue("Ready for literal data")
	return c.flush()
}

// startWrite gives the connection a response buffer.
func (c *conn) startWrite() {
	if c.bw == nil {
		c.bw = c.srv.writeBufs.Get().(*bufio.Writer)
		c.bw.Reset(c.dw)
		c.w.SetBuffer(c.bw)
		c.w.UTF8 = c.utf8
	}
}

// flush writes the responses and gives the buffer back: an idle
// connection holds none.
func (c *conn) flush() error {
	if c.bw == nil {
		return nil
	}
	err := c.bw.Flush()
	if c.compressed {
		if derr := c.endDeflate(); err == nil {
			err = derr
		}
	}
	c.bw.Reset(nil)
	c.srv.writeBufs.Put(c.bw)
	c.bw = nil
	c.w.SetBuffer(nil)
	return err
}

// sayBye writes BYE and what is pending.
func (c *conn) sayBye(text string) {
	c.startWrite()
	c.w.Status("", imap.StatusResponseTypeBye, "", text)
	c.flush()
}

// beginWait marks the connection as waiting for the client; false when
// Shutdown has begun.
func (c *conn) beginWait() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return false
	}
	c.waiting = true
	return true
}

// endWait ends beginWait and reports whether Shutdown has begun.
func (c *conn) endWait() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting = false
	return c.stopping
}

// Drain asks the connection to say BYE once its current command is
// answered, at once if it is waiting for the client.
func (c *conn) Drain() {
	c.mu.Lock()
	c.stopping = true
	waiting := c.waiting
	c.mu.Unlock()
	if waiting {
		c.raw.SetReadDeadline(time.Now())
	}
}

// close ends the connection and its session.
func (c *conn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	if c.sess != nil {
		c.sess.Close()
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		c.srv.writeBufs.Put(c.bw)
		c.bw = nil
	}
	c.nc.Close()
	c.srv.track.Done(c)
}

// Close closes the connection from another goroutine (Server.Close).
func (c *conn) Close() error {
	return c.raw.Close()
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// startTLS switches the connection to TLS after STARTTLS's OK: what the
// client sent after the command is dropped unread (RFC 9051 section
// 6.2.1), and the handshake runs under the login timeout.
func (c *conn) startTLS() error {
	if err := c.flush(); err != nil {
		return err
	}
	tc := tls.Server(c.raw, c.srv.opts.TLSConfig)
	c.mu.Lock()
	d := c.clock.Deadline(time.Now())
	c.mu.Unlock()
	c.raw.SetReadDeadline(d)
	if err := tc.HandshakeContext(c.srv.ctx); err != nil {
		return err
	}
	c.nc, c.isTLS = tc, true
	c.r.Reset(clockedReader{c}) // the TLS stream, under the same clock
	return nil
}

// itoa formats a number for a response code.
func itoa[T ~uint32 | ~int | ~int64 | ~uint64](n T) string { return strconv.FormatInt(int64(n), 10) }

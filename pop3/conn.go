package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailagent/mailagent/internal/readclock"
)

// state is a session's RFC 1939 state.
type state int

const (
	stateAuthorization state = iota
	stateTransaction
	stateUpdate
)

// errLineTooLong ends a session whose client sent an over-long line.
var errLineTooLong = errors.New("line too long")

// conn is one client connection and its session.
type conn struct {
	srv    *Server
	raw    net.Conn // the accepted connection
	nc     net.Conn // raw behind deadlines, or TLS over that
	remote net.Addr
	log    *slog.Logger
	br     *bufio.Reader
	bw     *bufio.Writer
	msgRd  *bufio.Reader // reused for message files
	slurp  []byte        // reused for small message files
	ctx    context.Context
	cancel context.CancelFunc
	clock  *readclock.Clock // read deadlines; the session's goroutine owns it

	draining atomic.Bool // Shutdown asked the session to end

	mu     sync.Mutex
	closed bool

	tls       bool
	state     state
	user      string // USER's argument, waiting for PASS
	authFails int
	drop      *maildrop
	quit      bool // the session ends after this reply
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{srv: s, raw: nc, remote: nc.RemoteAddr(), ctx: ctx, cancel: cancel}
	c.clock = readclock.New(readclock.Limits{Line: s.opts.IdleTimeout, Login: s.opts.LoginTimeout}, time.Now())
	c.log = s.log.With("remote", c.remote.String())
	c.nc = c.clocked(nc)
	// 8 KiB holds a pipelined burst of commands and the longest SASL line.
	c.br = bufio.NewReaderSize(c.nc, 8<<10)
	c.bw = bufio.NewWriterSize(c.nc, 64<<10)
	return c
}

// clocked wraps nc so that every read meets the connection's clock (a
// whole command or SASL line within IdleTimeout of the server's
// readiness for it, everything before login within LoginTimeout of the
// connect) and every write WriteTimeout, and reads fail once Shutdown
// has asked the connection to end.
func (c *conn) clocked(nc net.Conn) net.Conn {
	return &readclock.Conn{Conn: nc, Clock: c.clock, WriteTimeout: c.srv.opts.WriteTimeout, Draining: c.draining.Load}
}

// Drain asks the session to end once its current command is answered.
func (c *conn) Drain() {
	c.draining.Store(true)
	c.raw.SetReadDeadline(time.Now())
}

// close ends the connection at once.
func (c *conn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.raw.Close()
}

// Close ends the connection at once, from another goroutine (Close and
// Shutdown).
func (c *conn) Close() error {
	c.close()
	return nil
}

// serve runs the session to its end.
func (c *conn) serve(implicitTLS bool) {
	defer c.srv.track.Done(c)
	defer c.close()
	defer c.endSession()
	defer func() {
		// A bug in one session must not take the server down.
		if r := recover(); r != nil {
			c.log.Error("session panic", "panic", r)
		}
	}()
	if implicitTLS {
		if err := c.startTLS(); err != nil {
			c.log.Info("TLS handshake failed", "err", err)
			return
		}
	}
	c.reply("+OK %s POP3 ready.", c.srv.opts.Hostname)
	for !c.quit {
		if c.br.Buffered() == 0 {
			// RFC 2449 PIPELINING: replies to a burst of commands go
			// out together, once no more of the burst is buffered.
			if err := c.bw.Flush(); err != nil {
				return
			}
		}
		line, err := c.readLine(maxCommandLine)
		switch {
		case errors.Is(err, errLineTooLong):
			c.reply("-ERR Command line too long (255 octets at most).")
			continue
		case errors.Is(err, readclock.ErrDraining), isTimeout(err) && c.draining.Load():
			c.reply("-ERR [SYS/TEMP] Server shutting down, try again later.")
			c.bw.Flush()
			return
		case isTimeout(err):
			c.timedOut()
			return
		case err != nil:
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.log.Info("read", "err", err)
			}
			return
		}
		c.command(line)
	}
	c.bw.Flush()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// endSession leaves the maildrop as a session that did not reach UPDATE
// must: nothing deleted, \Seen set on what was retrieved, the lock
// released. It runs however the session ends.
func (c *conn) endSession() {
	if c.drop == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 30*time.Second)
	defer cancel()
	if err := c.drop.markSeen(ctx); err != nil {
		c.log.Warn("setting \\Seen", "err", err)
	}
	c.drop.close()
	c.drop = nil
}

// timedOut tells the client which time limit it ran into; the session
// then ends.
func (c *conn) timedOut() {
	if c.clock.Cause() == readclock.Login {
		c.reply("-ERR Disconnected: no login within %d seconds.", int(c.srv.opts.LoginTimeout/time.Second))
	} else {
		c.reply("-ERR Disconnected for inactivity.")
	}
	c.bw.Flush()
	c.log.Info("timeout", "state", c.state, "cause", c.clock.Cause().String())
}

// readLine reads one line of at most max octets with its line ending
// (CRLF, or a bare LF from a lenient client) and returns it without.
// A longer line is read to its end and discarded: errLineTooLong.
// Either way the line is over: the next gets its own time.
func (c *conn) readLine(max int) (string, error) {
	defer c.clock.EndLine()
	line, err := c.br.ReadSlice('\n')
	if err == nil && len(line) <= max {
		n := len(line) - 1
		if n > 0 && line[n-1] == '\r' {
			n--
		}
		return string(line[:n]), nil
	}
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = c.br.ReadSlice('\n')
	}
	if err != nil {
		return "", err
	}
	return "", errLineTooLong
}

// reply writes one response line. Errors surface at the next flush.
func (c *conn) reply(format string, args ...any) {
	if len(args) == 0 {
		c.bw.WriteString(format)
	} else {
		fmt.Fprintf(c.bw, format, args...)
	}
	c.bw.WriteString("\r\n")
}

// startTLS runs the server side of a TLS handshake over the connection.
func (c *conn) startTLS() error {
	tc := tls.Server(c.nc, c.srv.opts.TLSConfig)
	ctx, cancel := context.WithTimeout(c.ctx, time.Minute)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	c.nc = tc
	c.tls = true
	// Whatever the client sent after STLS in the clear is dropped with
	// the old buffer: it must not be taken as sent under TLS.
	c.br.Reset(tc)
	c.bw.Reset(tc)
	return nil
}

// secure reports whether passwords may be received.
func (c *conn) secure() bool {
	return c.tls || c.srv.opts.AllowInsecureAuth
}

func itoa(n int) string { return strconv.Itoa(n) }

package imap

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/mailagent/mailagent/internal/readclock"
)

// literalStall bounds any one wait inside a literal, whatever the rate
// so far: imapserver's own literal read timeout.
const literalStall = 5 * time.Minute

// readLimits are the time limits of the server's connections' reads.
func (s *Server) readLimits() readclock.Limits {
	o := &s.opts
	return readclock.Limits{
		Line:    o.IdleTimeout,
		MinRate: o.MinDataRate,
		Grace:   o.DataRateGrace,
		Stall:   literalStall,
		Login:   o.LoginTimeout,
	}
}

// clockedReader reads what the client sent (the plaintext, over TLS)
// with the deadline of the connection's clock, set before each read:
// a whole command line within IdleTimeout of the wait's start, a
// literal's bytes (APPEND's message among them) at MinDataRate after
// DataRateGrace, and everything before login within LoginTimeout of the
// connect. imapserver's own read deadlines, renewed at every command,
// are ignored (conn.SetReadDeadline). When a deadline passes, the
// client gets a BYE and the connection is closed.
//
// It follows the framing through the guard's state: the guard is in a
// literal exactly when the bytes to be read are a literal's (a
// synchronizing one only once its continuation request is written), and
// any line end read outside a literal ends the line waited for.
type clockedReader struct {
	c *conn
	r io.Reader
}

func (cr *clockedReader) Read(p []byte) (int, error) {
	c := cr.c
	c.wmu.Lock()
	inLiteral := c.g.mode == gLiteral
	c.wmu.Unlock()
	c.mu.Lock()
	c.clock.SetData(inLiteral)
	d := c.clock.Deadline(time.Now())
	cause := c.clock.Cause()
	c.mu.Unlock()
	if err := c.Conn.SetReadDeadline(d); err != nil {
		return 0, err
	}
	n, err := cr.r.Read(p)
	c.mu.Lock()
	c.clock.Read(n)
	if !inLiteral && bytes.IndexByte(p[:n], '\n') >= 0 {
		c.clock.EndLine()
	}
	c.mu.Unlock()
	if n == 0 && cause != readclock.None && errors.Is(err, os.ErrDeadlineExceeded) {
		c.expire(cause)
		return 0, net.ErrClosed
	}
	return n, err
}

// expire says BYE for a limit the client ran into, and closes.
func (c *conn) expire(cause readclock.Cause) {
	text := "Disconnected for inactivity."
	switch cause {
	case readclock.Data:
		text = "Literal data arriving too slowly, closing the connection."
	case readclock.Login:
		text = "Disconnected: no login within " + strconv.Itoa(int(c.srv.opts.LoginTimeout/time.Second)) + " seconds."
	}
	c.srv.log.Info("imap: connection timed out", "remote", c.RemoteAddr().String(), "cause", cause.String())
	if ic := c.imapConn(); ic != nil {
		ic.Bye(text)
		return
	}
	c.Close()
}

package imap

import (
	"bytes"
	"errors"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/mailagent/mailagent/internal/readclock"
)

// literalStall bounds any one wait inside a literal, whatever the rate
// so far.
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

// errStopping ends a read that waits for the client once Shutdown has
// begun.
var errStopping = errors.New("imap: server shutting down")

// clockedReader reads what the client sent (the plaintext, over TLS)
// with the deadline of the connection's clock, set before each read:
// a whole command line within IdleTimeout of the wait's start, a
// literal's bytes (APPEND's message among them) at MinDataRate after
// DataRateGrace, and everything before login within LoginTimeout of the
// connect. The parser says when the bytes to be read are a literal's
// (Reader.InLiteral); any line end read outside a literal ends the line
// waited for. When a deadline passes, the connection records why, for
// its BYE.
type clockedReader struct{ c *conn }

func (cr clockedReader) Read(p []byte) (int, error) {
	c := cr.c
	inLiteral := c.r != nil && c.r.InLiteral()
	c.mu.Lock()
	if c.stopping && c.waiting {
		c.mu.Unlock()
		return 0, errStopping
	}
	c.clock.SetData(inLiteral)
	d := c.clock.Deadline(time.Now())
	cause := c.clock.Cause()
	c.mu.Unlock()
	if err := c.nc.SetReadDeadline(d); err != nil {
		return 0, err
	}
	n, err := c.source().Read(p)
	c.mu.Lock()
	c.clock.Read(n)
	if !inLiteral && bytes.IndexByte(p[:n], '\n') >= 0 {
		c.clock.EndLine()
	}
	if n == 0 && cause != readclock.None && errors.Is(err, os.ErrDeadlineExceeded) && !c.stopping {
		c.expired = cause
		err = net.ErrClosed
	}
	c.mu.Unlock()
	return n, err
}

// expiredText is the BYE for a limit the client ran into.
func (c *conn) expiredText() string {
	switch c.expiredCause() {
	case readclock.Data:
		return "Literal data arriving too slowly, closing the connection."
	case readclock.Login:
		return "Disconnected: no login within " + strconv.Itoa(int(c.srv.opts.LoginTimeout/time.Second)) + " seconds."
	}
	return "Disconnected for inactivity."
}

// expiredCause is the limit the client ran into, or None.
func (c *conn) expiredCause() readclock.Cause {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expired
}

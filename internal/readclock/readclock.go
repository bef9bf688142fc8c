// Package readclock computes the read deadlines of a mail protocol
// connection, the same way for every server (SMTP, LMTP, POP3, IMAP).
//
// A deadline renewed on every read lets a client keep a connection, and
// the slot it takes, for ever by sending one byte at a time. The Clock
// instead bounds units of the protocol:
//
//   - A command line must arrive whole within Limits.Line of the moment
//     the server started waiting for it, however its bytes are spread.
//   - A data transfer (SMTP DATA and BDAT, IMAP literals such as
//     APPEND's message) must keep a minimum average rate: after
//     Limits.Grace, at least Limits.MinRate bytes per second on
//     average, as Postfix's smtpd_min_data_rate does, so that a large
//     message on a slow link is not cut off but a trickle is. No single
//     wait in a transfer is longer than Limits.Stall, the RFC 5321
//     section 4.5.3.2 timeout that stays the upper bound.
//   - Before authentication, everything must be done within
//     Limits.Login of the connection's start, however many commands
//     (NOOP, CAPABILITY) arrive on the way.
//
// The package reads and writes nothing itself: a server asks Deadline
// before each read of the connection, sets it, tells the Clock what it
// read and where the protocol's units end, and, when the read times
// out, asks which limit it was for the reply.
package readclock

import (
	"errors"
	"net"
	"time"
)

// Limits are the time limits of one connection's reads. A zero or
// negative duration or rate turns its limit off.
type Limits struct {
	// Line bounds the wait for a whole command line.
	Line time.Duration
	// MinRate is the minimum average rate of a data transfer, in bytes
	// per second, once Grace has passed.
	MinRate int64
	// Grace is how long a data transfer may take before MinRate applies.
	Grace time.Duration
	// Stall bounds any one wait during a data transfer.
	Stall time.Duration
	// Login bounds the time from the connection's start to its
	// authentication; zero for a protocol without login (MX, LMTP).
	Login time.Duration
}

// Cause is which limit a deadline is for.
type Cause uint8

const (
	// None: no limit applies, the read may wait for ever.
	None Cause = iota
	// Line: the command line did not arrive in time.
	Line
	// Data: the data transfer was too slow or stalled.
	Data
	// Login: the client did not authenticate in time.
	Login
)

// String names the cause in logs.
func (c Cause) String() string {
	switch c {
	case Line:
		return "command line timeout"
	case Data:
		return "data rate too low"
	case Login:
		return "login timeout"
	}
	return "none"
}

// Clock tracks one connection's deadlines. It is not safe for
// concurrent use: the connection's reading side owns it.
type Clock struct {
	lim       Limits
	loginBy   time.Time // zero: no login limit (any more)
	lineStart time.Time // zero: no line being waited for
	dataStart time.Time // zero: no transfer started
	dataBytes int64
	inData    bool
	cause     Cause // of the last deadline given
}

// New returns a Clock for a connection that started at start.
func New(lim Limits, start time.Time) *Clock {
	c := &Clock{lim: lim}
	if lim.Login > 0 {
		c.loginBy = start.Add(lim.Login)
	}
	return c
}

// Deadline returns the deadline for the next read at now, zero for
// none, and remembers which limit it is for (see Cause). The first call
// after a line ended starts the wait for the next line; the first in a
// data transfer starts the transfer.
func (c *Clock) Deadline(now time.Time) time.Time {
	var d time.Time
	c.cause = None
	if c.inData {
		if c.dataStart.IsZero() {
			c.dataStart = now
		}
		if c.lim.MinRate > 0 {
			// The transfer is owed MinRate bytes per second after
			// Grace: what it has sent buys it that much time.
			earned := time.Duration(float64(c.dataBytes) / float64(c.lim.MinRate) * float64(time.Second))
			d = c.dataStart.Add(max(c.lim.Grace, 0) + earned)
			c.cause = Data
		}
		if c.lim.Stall > 0 {
			if s := now.Add(c.lim.Stall); d.IsZero() || s.Before(d) {
				d, c.cause = s, Data
			}
		}
	} else if c.lim.Line > 0 {
		if c.lineStart.IsZero() {
			c.lineStart = now
		}
		d, c.cause = c.lineStart.Add(c.lim.Line), Line
	}
	if !c.loginBy.IsZero() && (d.IsZero() || c.loginBy.Before(d)) {
		d, c.cause = c.loginBy, Login
	}
	return d
}

// Cause is the limit of the last deadline Deadline returned: the one a
// read that timed out ran into.
func (c *Clock) Cause() Cause { return c.cause }

// Read counts n bytes read; in a data transfer they buy it time.
func (c *Clock) Read(n int) {
	if c.inData {
		c.dataBytes += int64(n)
	}
}

// EndLine marks a command line complete: the wait for the next one
// starts at the next Deadline.
func (c *Clock) EndLine() { c.lineStart = time.Time{} }

// SetData marks the start (true) or end (false) of a data transfer;
// setting the current state again changes nothing. A transfer ended
// also ends the line being waited for, so the next line gets its whole
// time.
func (c *Clock) SetData(on bool) {
	if on == c.inData {
		return
	}
	c.inData = on
	c.dataStart, c.dataBytes = time.Time{}, 0
	c.lineStart = time.Time{}
}

// InData reports whether a data transfer is in progress.
func (c *Clock) InData() bool { return c.inData }

// LoggedIn lifts the login limit: the client has authenticated.
func (c *Clock) LoggedIn() { c.loginBy = time.Time{} }

// LoggedOut starts the login limit again at now: a client that dropped
// its authentication (ManageSieve's UNAUTHENTICATE) is held to the same
// time as one that never logged in.
func (c *Clock) LoggedOut(now time.Time) {
	if c.lim.Login > 0 {
		c.loginBy = now.Add(c.lim.Login)
	}
}

// ErrDraining is what a Conn's reads return once its server has asked
// the connection to end (Conn.Draining).
var ErrDraining = errors.New("server shutting down")

// Conn is a connection whose every read waits no longer than Clock
// allows (set before each read, so a line trickled in byte by byte
// still meets its one deadline) and whose every write, those of a TLS
// handshake included, no longer than WriteTimeout. Once Draining reports
// true, reads fail with ErrDraining: it is checked after the deadline is
// set, so a server that sets the flag and then a past deadline stops
// every read, waiting or not. The session's goroutine owns Clock.
type Conn struct {
	net.Conn
	Clock        *Clock
	WriteTimeout time.Duration
	Draining     func() bool
}

func (c *Conn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(c.Clock.Deadline(time.Now())); err != nil {
		return 0, err
	}
	if c.Draining != nil && c.Draining() {
		return 0, ErrDraining
	}
	n, err := c.Conn.Read(b)
	c.Clock.Read(n)
	return n, err
}

func (c *Conn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.WriteTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

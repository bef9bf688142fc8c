package smtp

import (
	"log/slog"
	"time"

	"github.com/mailagent/mailagent/internal/readclock"
)

// readLimits are the time limits of the server's connections' reads.
func (s *Server) readLimits() readclock.Limits {
	o := &s.opts
	l := readclock.Limits{
		Line:    o.ReadTimeout,
		MinRate: o.MinDataRate,
		Grace:   o.DataRateGrace,
		Stall:   o.ReadTimeout,
	}
	if o.Role == Submission {
		l.Login = o.LoginTimeout
	}
	return l
}

// expire answers a read that ran into one of the clock's limits:
// 421 4.4.2 (RFC 3463: bad connection), after which go-smtp's replies
// are dropped and the connection ends as go-smtp gives up on the
// timed-out read. Whatever transaction was in progress is abandoned.
func (c *conn) expire(cause readclock.Cause) {
	text := "Timeout waiting for a command, closing connection"
	switch cause {
	case readclock.Data:
		text = "Timeout: message data arriving too slowly, closing connection"
	case readclock.Login:
		text = "Timeout: no successful authentication in time, closing connection"
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	w := c.stream()
	c.silent = true
	log := c.sessLog
	c.mu.Unlock()
	if log == nil {
		log = c.srv.log.With("role", c.srv.opts.Role.String(), "remote", c.RemoteAddr().String())
	}
	log.Info("connection timed out", "cause", cause.String())
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.srv.opts.WriteTimeout))
	_, _ = w.Write([]byte("421 4.4.2 " + c.srv.opts.Hostname + " " + text + "\r\n"))
}

// setSessionLog makes l, which carries the session ID, the logger of
// what the connection logs itself.
func (c *conn) setSessionLog(l *slog.Logger) {
	c.mu.Lock()
	c.sessLog = l
	c.mu.Unlock()
}

// loggedIn lifts the connection's login time limit.
func (c *conn) loggedIn() {
	c.mu.Lock()
	c.clock.LoggedIn()
	c.mu.Unlock()
}

// inMessage reports whether message content is being read: DATA's, a
// BDAT chunk's, or the commands between the chunks of one message.
func (s *scanner) inMessage() bool {
	return s.mode == modeData || s.mode == modeChunk || s.chunkOpen
}

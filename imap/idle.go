package imap

import (
	"errors"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
)

// cmdIdle serves IDLE (RFC 2177): the mailbox's news is written as it
// happens until the client says DONE. A goroutine reads the DONE line
// while this one waits for news.
func (c *conn) cmdIdle(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	c.w.Continue("Idling")
	var notify <-chan struct{}
	if s.sel != nil {
		notify = s.sel.notify
		// News queued before IDLE began goes out first.
		if err := s.pollNotify(c.w, true); err != nil {
			return okStatus{}, err
		}
	}
	if c.flush() != nil {
		c.state = stateLogout
		return okStatus{}, errSilent
	}
	if !c.beginWait() {
		c.sayBye("Server shutting down")
		c.state = stateLogout
		return okStatus{}, errSilent
	}
	done := make(chan error, 1)
	go func() { done <- c.r.ReadIdleDone() }()
	for {
		select {
		case err := <-done:
			stopping := c.endWait()
			c.startWrite()
			var e *imapwire.Error
			switch {
			case errors.Is(err, imapwire.ErrIdleNotDone):
				return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Expected DONE"}
			case errors.As(err, &e) && e.Close:
				// An over-long line: answered as a command's, and what
				// follows it is not read.
				c.bye = "Command or literal too large, closing the connection"
				return okStatus{}, &imap.Error{Type: e.Type, Code: e.Code, Text: e.Text}
			case err != nil:
				c.readFailed(err, stopping)
				c.state = stateLogout
				return okStatus{}, errSilent
			}
			return okStatus{text: "IDLE terminated"}, nil
		case <-s.notifyWake():
			// NOTIFY's news of other mailboxes (RFC 5465).
			c.startWrite()
			s.pushNotify(c.w)
			if c.flush() != nil {
				c.raw.Close()
				<-done
				c.endWait()
				c.state = stateLogout
				return okStatus{}, errSilent
			}
		case <-notify:
			c.startWrite()
			if err := s.pollNotify(c.w, true); err != nil || c.flush() != nil {
				// The reader ends when the connection closes.
				c.raw.Close()
				<-done
				c.endWait()
				c.state = stateLogout
				return okStatus{}, errSilent
			}
		}
	}
}

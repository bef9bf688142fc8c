package pop3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mailagent/mailagent/maildir"
)

// msgArg parses the message-number argument of cmd, replying -ERR and
// returning nil for a bad, out-of-range or deleted one.
func (c *conn) msgArg(arg string) (int, *maildir.Message) {
	n, err := parseMsgNum(arg, len(c.drop.msgs))
	if err != nil {
		c.reply("-ERR %s.", capital(err.Error()))
		return 0, nil
	}
	m, err := c.drop.message(n)
	if err != nil {
		c.reply("-ERR Message %d is deleted.", n)
		return 0, nil
	}
	return n, m
}

// capital upper-cases the first letter of an error text for a reply.
func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// cmdLIST gives the size of one message or of every message not marked
// deleted (RFC 1939 section 5).
func (c *conn) cmdLIST(cmd command) {
	switch len(cmd.args) {
	case 0:
		c.reply("+OK %d messages (%d octets)", c.drop.count(), c.drop.octets())
		for i := range c.drop.msgs {
			if !c.drop.deleted[i] {
				c.reply("%d %d", i+1, c.drop.msgs[i].VSize)
			}
		}
		c.reply(".")
	case 1:
		if n, m := c.msgArg(cmd.args[0]); m != nil {
			c.reply("+OK %d %d", n, m.VSize)
		}
	default:
		c.reply("-ERR LIST takes at most one argument.")
	}
}

// cmdUIDL gives the unique-id listing of one message or of every message
// not marked deleted (RFC 1939 section 7).
func (c *conn) cmdUIDL(cmd command) {
	d := c.drop
	switch len(cmd.args) {
	case 0:
		c.reply("+OK")
		for i := range d.msgs {
			if !d.deleted[i] {
				c.reply("%d %s", i+1, c.srv.uidl.format(d.uidValidity, &d.msgs[i]))
			}
		}
		c.reply(".")
	case 1:
		if n, m := c.msgArg(cmd.args[0]); m != nil {
			c.reply("+OK %d %s", n, c.srv.uidl.format(d.uidValidity, m))
		}
	default:
		c.reply("-ERR UIDL takes at most one argument.")
	}
}

// cmdDELE marks a message deleted; it is removed at QUIT.
func (c *conn) cmdDELE(cmd command) {
	if len(cmd.args) != 1 {
		c.reply("-ERR DELE takes one argument, a message number.")
		return
	}
	if n, m := c.msgArg(cmd.args[0]); m != nil {
		c.drop.markDeleted(n)
		c.reply("+OK Message %d deleted.", n)
	}
}

// cmdRETR sends a whole message; it gets \Seen when the session ends.
func (c *conn) cmdRETR(cmd command) {
	if len(cmd.args) != 1 {
		c.reply("-ERR RETR takes one argument, a message number.")
		return
	}
	if n, m := c.msgArg(cmd.args[0]); m != nil {
		if c.sendMessage(n, m, -1) {
			c.drop.retrieved[n-1] = true
		}
	}
}

// cmdTOP sends a message's header and its first lines (RFC 1939 section 7).
func (c *conn) cmdTOP(cmd command) {
	if len(cmd.args) != 2 {
		c.reply("-ERR TOP takes two arguments, a message number and a line count.")
		return
	}
	lines, err := parseNumber(cmd.args[1])
	if err != nil {
		c.reply("-ERR Invalid line count.")
		return
	}
	if n, m := c.msgArg(cmd.args[0]); m != nil {
		c.sendMessage(n, m, lines)
	}
}

// sendMessage sends message n as a multi-line response, all of it
// (bodyLines < 0) or its header and bodyLines lines of its body. It
// reports whether the message was sent; when the message cannot be read
// the reply is -ERR, or the session ends if the failure comes after the
// +OK.
func (c *conn) sendMessage(n int, m *maildir.Message, bodyLines int) bool {
	f, _, err := c.drop.folder.Open(c.ctx, m.UID)
	if errors.Is(err, maildir.ErrNoMessage) {
		c.reply("-ERR Message %d was removed by another session.", n)
		return false
	}
	if err != nil {
		c.log.Error("opening message", "uid", m.UID, "err", err)
		c.reply("-ERR [SYS/TEMP] Cannot read message %d.", n)
		return false
	}
	defer f.Close()
	if bodyLines < 0 {
		c.reply("+OK %d octets", m.VSize)
	} else {
		c.reply("+OK")
	}
	if c.msgRd == nil {
		c.msgRd = newMessageReader()
	}
	if err := writeMessage(c.bw, c.msgRd, c.wholeFile(f, m.Size), bodyLines); err != nil {
		// The client has part of a message and no way to tell: the
		// session cannot go on.
		c.log.Error("reading message", "uid", m.UID, "err", err)
		c.quit = true
		return false
	}
	c.reply(".")
	return true
}

// maxSlurp is the largest message read into memory with one read.
const maxSlurp = 256 << 10

// wholeFile returns a reader of the message file f of expected size.
// A message up to maxSlurp is read with one read of size+1 bytes into a
// buffer kept for the session: getting exactly size bytes back is the
// end of the file, which saves the read that would only return EOF. A
// file of another size (a name whose S= is wrong) is read to its real
// end.
func (c *conn) wholeFile(f *os.File, size int64) io.Reader {
	if size <= 0 || size > maxSlurp {
		return f
	}
	if int64(cap(c.slurp)) < size+1 {
		c.slurp = make([]byte, size+1)
	}
	buf := c.slurp[:size+1]
	n, err := f.Read(buf)
	if err == nil && int64(n) == size {
		return bytes.NewReader(buf[:n])
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return f // the error comes back from reading f again
	}
	return io.MultiReader(bytes.NewReader(buf[:n]), f)
}

// cmdQUIT in TRANSACTION enters UPDATE (RFC 1939 section 6): the
// deletions are applied and the maildrop released before the reply, so
// a client that logs in again at once finds it free.
func (c *conn) cmdQUIT() {
	c.state = stateUpdate
	c.quit = true
	// The client asked for this; a server Close racing it must not
	// leave it half done.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), time.Minute)
	defer cancel()
	d := c.drop
	c.drop = nil
	if err := d.markSeen(ctx); err != nil {
		c.log.Warn("setting \\Seen", "err", err)
	}
	if err := d.update(ctx); err != nil {
		c.log.Error("update", "err", err)
		d.close()
		c.reply("-ERR [SYS/TEMP] Some deleted messages were not removed.")
		return
	}
	d.close()
	c.reply("+OK Logging out, %d messages left.", len(d.msgs)-d.nDeleted)
}

package pop3

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// Replies shared by several commands.
const (
	replyInsecure = "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
	replyAuthFail = "-ERR [AUTH] Authentication failed."
	replyThrottle = "-ERR [SYS/TEMP] Too many failed logins, try again later."
	replyTempFail = "-ERR [SYS/TEMP] Temporary authentication failure, try again later."
)

// command runs one command line.
func (c *conn) command(line string) {
	cmd, err := parseCommand(line)
	if err != nil {
		c.reply("-ERR %s.", err)
		return
	}
	switch c.state {
	case stateAuthorization:
		switch cmd.name {
		case "CAPA":
			c.cmdCAPA()
		case "QUIT":
			c.reply("+OK Logging out.")
			c.quit = true
		case "STLS":
			c.cmdSTLS()
		case "USER":
			c.cmdUSER(cmd)
		case "PASS":
			c.cmdPASS(cmd)
		case "AUTH":
			c.cmdAUTH(cmd)
		case "APOP":
			c.reply("-ERR APOP is not supported.")
		case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL":
			c.reply("-ERR Not logged in.")
		default:
			c.reply("-ERR Unknown command.")
		}
	case stateTransaction:
		switch cmd.name {
		case "CAPA":
			c.cmdCAPA()
		case "QUIT":
			c.cmdQUIT()
		case "STAT":
			if c.noArgs(cmd) {
				c.reply("+OK %d %d", c.drop.count(), c.drop.octets())
			}
		case "LIST":
			c.cmdLIST(cmd)
		case "UIDL":
			c.cmdUIDL(cmd)
		case "RETR":
			c.cmdRETR(cmd)
		case "TOP":
			c.cmdTOP(cmd)
		case "DELE":
			c.cmdDELE(cmd)
		case "NOOP":
			if c.noArgs(cmd) {
				c.reply("+OK")
			}
		case "RSET":
			if c.noArgs(cmd) {
				c.drop.reset()
				c.reply("+OK Maildrop has %d messages (%d octets).", c.drop.count(), c.drop.octets())
			}
		case "USER", "PASS", "AUTH", "APOP", "STLS":
			c.reply("-ERR Already logged in.")
		default:
			c.reply("-ERR Unknown command.")
		}
	}
}

func (c *conn) noArgs(cmd command) bool {
	if len(cmd.args) != 0 {
		c.reply("-ERR %s takes no argument.", cmd.name)
		return false
	}
	return true
}

// cmdCAPA lists what the session can use now (RFC 2449): USER, SASL and
// STLS only before login, and the login methods only where passwords may
// be sent.
func (c *conn) cmdCAPA() {
	o := &c.srv.opts
	c.reply("+OK Capability list follows.")
	c.reply("CAPA")
	c.reply("TOP")
	c.reply("UIDL")
	c.reply("RESP-CODES")
	c.reply("AUTH-RESP-CODE")
	c.reply("PIPELINING")
	if c.state == stateAuthorization {
		if c.secure() {
			c.reply("USER")
			if mechs := c.srv.opts.Authenticator.Mechanisms(); len(mechs) > 0 {
				c.reply("SASL %s", strings.Join(mechs, " "))
			}
		}
		if o.TLSConfig != nil && !c.tls {
			c.reply("STLS")
		}
	}
	if o.Expire != "" {
		c.reply("EXPIRE %s", o.Expire)
	}
	if o.LoginDelay > 0 {
		c.reply("LOGIN-DELAY %d", int64(o.LoginDelay.Seconds()))
	}
	if o.Implementation != "-" {
		c.reply("IMPLEMENTATION %s", o.Implementation)
	}
	c.reply(".")
}

// cmdSTLS starts TLS (RFC 2595 section 4).
func (c *conn) cmdSTLS() {
	switch {
	case c.srv.opts.TLSConfig == nil:
		c.reply("-ERR Unknown command.")
		return
	case c.tls:
		c.reply("-ERR TLS is already active.")
		return
	}
	c.reply("+OK Begin TLS negotiation now.")
	if err := c.bw.Flush(); err != nil {
		c.quit = true
		return
	}
	if err := c.startTLS(); err != nil {
		c.log.Info("STLS handshake failed", "err", err)
		c.quit = true
		return
	}
	c.user = ""
}

func (c *conn) cmdUSER(cmd command) {
	if !c.secure() {
		c.reply(replyInsecure)
		return
	}
	if len(cmd.args) != 1 {
		c.reply("-ERR USER takes one argument, the user name.")
		return
	}
	c.user = cmd.args[0]
	c.reply("+OK")
}

func (c *conn) cmdPASS(cmd command) {
	if !c.secure() {
		c.reply(replyInsecure)
		return
	}
	if c.user == "" {
		c.reply("-ERR No user name given (USER first).")
		return
	}
	if cmd.rest == "" {
		c.reply("-ERR PASS takes one argument, the password.")
		return
	}
	username := c.user
	c.user = ""
	u, err := c.srv.opts.Authenticator.Authenticate(c.ctx, username, cmd.rest, c.remote)
	if err != nil {
		c.authFailed(username, err)
		return
	}
	c.login(u)
}

// cmdAUTH is RFC 5034's AUTH: with no argument it lists the mechanisms
// (as RFC 1734 servers did, which clients such as Outlook still ask);
// otherwise it runs the SASL exchange, with the initial response if the
// client sent one.
func (c *conn) cmdAUTH(cmd command) {
	if !c.secure() {
		c.reply(replyInsecure)
		return
	}
	a := c.srv.opts.Authenticator
	if len(cmd.args) == 0 {
		c.reply("+OK")
		for _, m := range a.Mechanisms() {
			c.reply("%s", m)
		}
		c.reply(".")
		return
	}
	if len(cmd.args) > 2 {
		c.reply("-ERR AUTH takes a mechanism and an optional initial response.")
		return
	}
	mech := strings.ToUpper(cmd.args[0])
	if !slices.ContainsFunc(a.Mechanisms(), func(m string) bool { return strings.EqualFold(m, mech) }) {
		c.reply("-ERR Unsupported authentication mechanism.")
		return
	}
	var resp []byte
	if len(cmd.args) == 2 {
		r, err := decodeSASL(cmd.args[1])
		if err != nil {
			c.reply("-ERR [AUTH] Invalid base64 in the initial response.")
			return
		}
		resp = r
	}
	var user *store.User
	srv, err := a.NewSASLServer(c.ctx, mech, c.remote, func(u *store.User) error {
		user = u
		return nil
	})
	if err != nil {
		c.reply("-ERR Unsupported authentication mechanism.")
		return
	}
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			c.authFailed(mech, err)
			return
		}
		if done {
			break
		}
		c.reply("+ %s", base64.StdEncoding.EncodeToString(challenge))
		if err := c.bw.Flush(); err != nil {
			c.quit = true
			return
		}
		line, err := c.readLine(maxSASLLine)
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				c.reply("-ERR [AUTH] Response too long.")
				return
			}
			c.quit = true
			return
		}
		if line == "*" {
			c.reply("-ERR Authentication cancelled.")
			return
		}
		if resp, err = decodeSASL(line); err != nil {
			c.reply("-ERR [AUTH] Invalid base64 in the response.")
			return
		}
	}
	if user == nil {
		c.authFailed(mech, auth.ErrInvalidCredentials)
		return
	}
	c.login(user)
}

// decodeSASL decodes a base64 SASL response; "=" is RFC 5034's empty
// initial response.
func decodeSASL(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// authFailed answers a failed login. A throttled client is told to come
// back later and disconnected; a wrong password counts towards
// MaxAuthFailures.
func (c *conn) authFailed(who string, err error) {
	switch {
	case errors.Is(err, auth.ErrThrottled):
		c.log.Warn("login throttled", "user", who)
		c.reply(replyThrottle)
		c.quit = true
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrAuthzRefused),
		errors.Is(err, auth.ErrMalformedResponse), isSASLSyntaxError(err):
		c.authFails++
		c.log.Info("login failed", "user", who, "failures", c.authFails)
		c.reply(replyAuthFail)
		if c.authFails >= c.srv.opts.MaxAuthFailures {
			c.quit = true
		}
	case errors.Is(err, context.Canceled):
		c.quit = true
	default:
		c.log.Error("login", "user", who, "err", err)
		c.reply(replyTempFail)
	}
}

// isSASLSyntaxError reports an error of go-sasl's own mechanisms for a
// response that breaks their syntax (an empty PLAIN response, a response
// after the end). go-sasl exports only one of them; the others are
// recognised by the "sasl: " prefix all its errors share.
func isSASLSyntaxError(err error) bool {
	return errors.Is(err, sasl.ErrUnexpectedClientResponse) || strings.HasPrefix(err.Error(), "sasl: ")
}

// login enters the TRANSACTION state for u, unless another session
// holds u's maildrop or LOGIN-DELAY forbids it yet.
func (c *conn) login(u *store.User) {
	d, err := openMaildrop(c.ctx, c.srv.opts.Maildirs, u.Maildir)
	if errors.Is(err, errInUse) {
		c.log.Info("maildrop in use", "user", u.Address)
		c.reply("-ERR [IN-USE] Mailbox is locked by another POP3 session.")
		return
	}
	if err != nil {
		c.log.Error("opening maildrop", "user", u.Address, "err", err)
		c.reply("-ERR [SYS/TEMP] Cannot open the mailbox, try again later.")
		return
	}
	if !c.srv.loginAllowed(u.Address) {
		d.close()
		c.reply("-ERR [LOGIN-DELAY] Logged in too recently, try again later.")
		return
	}
	c.drop = d
	c.state = stateTransaction
	c.log.Info("logged in", "user", u.Address, "messages", len(d.msgs))
	c.reply("+OK Logged in, maildrop has %d messages (%d octets).", d.count(), d.octets())
}

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

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

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

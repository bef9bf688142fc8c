package pop3

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/store"
)

// cmdUSER takes the user name of a USER/PASS login.
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

// cmdPASS checks the password given for USER's name (RFC 1939 section 7).
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
	c.login(u, "USER")
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
			// A failed login like any other (counted), not a free retry.
			c.authFailed(mech, auth.ErrMalformedResponse)
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
			if isTimeout(err) && !c.draining.Load() {
				c.timedOut()
			}
			c.quit = true
			return
		}
		if line == "*" {
			c.reply("-ERR Authentication cancelled.")
			return
		}
		if resp, err = decodeSASL(line); err != nil {
			c.authFailed(mech, auth.ErrMalformedResponse)
			return
		}
	}
	if user == nil {
		c.authFailed(mech, auth.ErrInvalidCredentials)
		return
	}
	c.login(user, mech)
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
// MaxAuthFailures, and the failure that reaches it gets a final reply of
// its own before the connection is closed.
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
		if c.authFails >= c.srv.opts.MaxAuthFailures {
			c.reply(replyAuthFailLast)
			c.quit = true
			return
		}
		c.reply(replyAuthFail)
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
// holds u's maildrop or LOGIN-DELAY forbids it yet. method is how u
// authenticated ("USER" for USER/PASS, else the SASL mechanism).
func (c *conn) login(u *store.User, method string) {
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
	c.clock.LoggedIn()
	// The same fields as IMAP's login line (see the README's log fields).
	c.log.Info("pop3: login", "user", u.Address, "tls", c.tls, "method", method, "messages", len(d.msgs))
	c.reply("+OK Logged in, maildrop has %d messages (%d octets).", d.count(), d.octets())
}

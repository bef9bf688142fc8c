package pop3

import "strings"

// Replies shared by several commands.
const (
	replyInsecure = "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
	replyAuthFail = "-ERR [AUTH] Authentication failed."
	// replyAuthFailLast answers the failed login that reaches
	// MaxAuthFailures, after which the server closes the connection.
	replyAuthFailLast = "-ERR [AUTH] Authentication failed; too many failures, closing the connection."
	replyThrottle     = "-ERR [SYS/TEMP] Too many failed logins, try again later."
	replyTempFail     = "-ERR [SYS/TEMP] Temporary authentication failure, try again later."
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

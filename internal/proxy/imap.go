package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/mailagent/mailagent/auth"
)

// ServeIMAP relays the IMAP sessions accepted on ln (implicitTLS for an
// imaps listener) until Shutdown.
func (p *Proxy) ServeIMAP(ln net.Listener, implicitTLS bool) error {
	return p.serve(ln, func(nc net.Conn) { p.imapConn(nc, implicitTLS) })
}

// imapCaps are the capabilities before login. The backends' own come
// with their reply to the login.
func (f *front) imapCaps() string {
	caps := "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID"
	if f.canTLS() {
		caps += " STARTTLS"
	}
	if f.authAllowed() {
		caps += " AUTH=PLAIN"
	} else {
		caps += " LOGINDISABLED"
	}
	return caps
}

// imapRefuses names the commands answered NO or BAD whatever their
// arguments, so that their literals are not asked for: all but those
// served before login, and LOGIN and AUTHENTICATE where passwords may
// not be sent.
func (f *front) imapRefuses(name string) bool {
	switch name {
	case "CAPABILITY", "NOOP", "ID", "LOGOUT", "STARTTLS":
		return false
	case "LOGIN", "AUTHENTICATE":
		return !f.authAllowed()
	}
	return true
}

func (p *Proxy) imapConn(nc net.Conn, implicitTLS bool) {
	f, err := p.newFront(nc, implicitTLS)
	if err != nil {
		nc.Close()
		return
	}
	relayed := false
	defer func() {
		if !relayed {
			f.nc.Close()
		}
	}()
	if f.printf("* OK [CAPABILITY %s] %s ready\r\n", f.imapCaps(), p.opts.Hostname) != nil {
		return
	}
	for {
		cmd, err := f.lr.readIMAP()
		switch {
		case errors.Is(err, errTooLong):
			f.printf("* BYE Command line too long\r\n")
			return
		case errors.Is(err, errSyntax):
			tag := cmd.tag
			if tag == "" {
				tag = "*"
			}
			if f.printf("%s BAD Syntax error\r\n", tag) != nil {
				return
			}
			continue
		case err != nil:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				f.printf("* BYE Autologout; idle for too long\r\n")
			}
			return
		}
		t := cmd.tag
		switch cmd.name {
		case "CAPABILITY":
			err = f.printf("* CAPABILITY %s\r\n%s OK CAPABILITY completed\r\n", f.imapCaps(), t)
		case "NOOP":
			err = f.printf("%s OK NOOP completed\r\n", t)
		case "ID":
			err = f.printf("* ID NIL\r\n%s OK ID completed\r\n", t)
		case "LOGOUT":
			f.printf("* BYE Logging out\r\n%s OK LOGOUT completed\r\n", t)
			return
		case "STARTTLS":
			if !f.canTLS() {
				err = f.printf("%s BAD STARTTLS not available\r\n", t)
				break
			}
			if f.printf("%s OK Begin TLS negotiation now\r\n", t) != nil || f.startTLS() != nil {
				return
			}
		case "LOGIN", "AUTHENTICATE":
			var user, pass string
			user, pass, err = f.imapCredentials(cmd)
			if err == nil && user != "" {
				var done bool
				done, relayed = f.imapLogin(t, user, pass)
				if done {
					return
				}
			}
		default:
			err = f.printf("%s BAD Command unknown or not allowed before login\r\n", t)
		}
		if err != nil {
			return
		}
	}
}

// imapCredentials reads LOGIN's or AUTHENTICATE PLAIN's credentials,
// answering itself when there are none to check ("" user, nil error).
func (f *front) imapCredentials(cmd imapCommand) (user, pass string, err error) {
	t := cmd.tag
	if !f.authAllowed() {
		return "", "", f.printf("%s NO [PRIVACYREQUIRED] Log in over TLS\r\n", t)
	}
	if cmd.name == "LOGIN" {
		if len(cmd.args) != 2 {
			return "", "", f.printf("%s BAD LOGIN takes a user name and a password\r\n", t)
		}
		return cmd.args[0], cmd.args[1], nil
	}
	if len(cmd.args) == 0 || len(cmd.args) > 2 || !strings.EqualFold(cmd.args[0], "PLAIN") {
		return "", "", f.printf("%s NO [CANNOT] Unsupported authentication mechanism\r\n", t)
	}
	resp := ""
	if len(cmd.args) == 2 {
		resp = cmd.args[1]
	} else {
		if err := f.printf("+ \r\n"); err != nil {
			return "", "", err
		}
		budget := f.p.opts.MaxLineLength
		line, err := f.lr.readLine(&budget)
		if err != nil {
			return "", "", err
		}
		resp = string(line)
	}
	if resp == "*" {
		return "", "", f.printf("%s BAD AUTHENTICATE cancelled\r\n", t)
	}
	user, pass, perr := plain(resp)
	if perr != nil {
		f.fails++
		code := "AUTHENTICATIONFAILED"
		if errors.Is(perr, auth.ErrAuthzRefused) {
			code = "AUTHORIZATIONFAILED"
		}
		return "", "", f.printf("%s NO [%s] Authentication failed\r\n", t, code)
	}
	return user, pass, nil
}

// imapLogin checks the credentials, logs in at the user's backend and
// relays the session. done: the connection is finished with; relayed:
// the relay has closed it.
func (f *front) imapLogin(tag, user, pass string) (done, relayed bool) {
	tagged := func(s string) string { return tag + " " + s }
	return f.login(loginDialect{
		proto:       "imap",
		backend:     (*Proxy).imapBackend,
		reply:       tagged,
		throttled:   "* BYE Too many failed logins, try again later\r\n" + tagged("NO [UNAVAILABLE] Too many failed logins"),
		failed:      tagged("NO [AUTHENTICATIONFAILED] Authentication failed"),
		tooMany:     "* BYE Too many failed logins",
		authTemp:    tagged("NO [UNAVAILABLE] Authentication temporarily unavailable"),
		unavailable: tagged("NO [UNAVAILABLE] Mail server unavailable, try again later"),
		moved:       "* BYE Your mailbox moved; log in again",
	}, user, pass)
}

// backendRefusal is a backend's NO to a login the proxy accepted; line
// is its reply without the tag, passed on to the client.
type backendRefusal struct{ line string }

func (e *backendRefusal) Error() string { return "proxy: backend refused: " + e.line }

// imapBackend connects to host's IMAP service on behalf of client and
// logs in as user, after telling it the client's address (ID
// x-originating-ip). It returns the connection, its reader and the
// backend's tagged OK reply without the tag.
func (p *Proxy) imapBackend(ctx context.Context, host string, client net.Conn, user, pass string) (net.Conn, *bufio.Reader, string, error) {
	nc, br, err := p.backendConn(ctx, host, p.opts.Ports.IMAP, client, backendHello{
		greeting: backendLine,
		ok:       "* OK",
		startTLS: "P0 STARTTLS\r\n",
		started:  func(br *bufio.Reader) (string, error) { return imapTagged(br, "P0") },
		tlsOK:    "OK",
	})
	if err != nil {
		return nil, nil, "", err
	}
	fail := func(err error) (net.Conn, *bufio.Reader, string, error) { return backendFailed(nc, host, err) }
	ip, port := addrParts(client.RemoteAddr())
	lip, lport := addrParts(client.LocalAddr())
	cmds := fmt.Sprintf("P1 ID (\"x-originating-ip\" %s \"x-originating-port\" %s \"x-connected-ip\" %s \"x-connected-port\" %s)\r\n"+
		"P2 AUTHENTICATE PLAIN %s\r\n", quote(ip), quote(port), quote(lip), quote(lport), plainResponse(user, pass))
	if _, err := io.WriteString(nc, cmds); err != nil {
		return fail(err)
	}
	if _, err := imapTagged(br, "P1"); err != nil {
		return fail(err)
	}
	line, err := imapTagged(br, "P2")
	if err != nil {
		return fail(err)
	}
	if !strings.HasPrefix(line, "OK") {
		if strings.HasPrefix(line, "NO") {
			return fail(&backendRefusal{line})
		}
		return fail(fmt.Errorf("login: %q", line))
	}
	return nc, br, line, nil
}

// imapTagged reads a backend's responses up to the one tagged tag and
// returns it without the tag.
func imapTagged(br *bufio.Reader, tag string) (string, error) {
	for {
		line, err := backendLine(br)
		if err != nil {
			return "", err
		}
		if rest, ok := strings.CutPrefix(line, tag+" "); ok {
			return rest, nil
		}
		if strings.HasPrefix(line, "* BYE") {
			return "", fmt.Errorf("%q", line)
		}
	}
}

// hostOnly drops a port from host.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

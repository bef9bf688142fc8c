package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// ServePOP3 relays the POP3 sessions accepted on ln (implicitTLS for a
// pop3s listener) until Shutdown.
func (p *Proxy) ServePOP3(ln net.Listener, implicitTLS bool) error {
	return p.serve(ln, func(nc net.Conn) { p.pop3Conn(nc, implicitTLS) })
}

func (p *Proxy) pop3Conn(nc net.Conn, implicitTLS bool) {
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
	if f.printf("+OK %s ready\r\n", p.opts.Hostname) != nil {
		return
	}
	user := ""
	for {
		budget := p.opts.MaxLineLength
		line, err := f.lr.readLine(&budget)
		switch {
		case errors.Is(err, errTooLong):
			f.printf("-ERR Line too long\r\n")
			return
		case err != nil:
			return
		}
		verb, arg, _ := strings.Cut(string(line), " ")
		switch strings.ToUpper(verb) {
		case "CAPA":
			caps := "USER\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nTOP\r\nUIDL\r\n"
			if f.authAllowed() {
				caps += "SASL PLAIN\r\n"
			}
			if f.canTLS() {
				caps += "STLS\r\n"
			}
			err = f.printf("+OK Capability list follows\r\n%s.\r\n", caps)
		case "STLS":
			if !f.canTLS() {
				err = f.printf("-ERR STLS not available\r\n")
				break
			}
			if f.printf("+OK Begin TLS negotiation\r\n") != nil || f.startTLS() != nil {
				return
			}
			user = ""
		case "QUIT":
			f.printf("+OK Bye\r\n")
			return
		case "USER":
			switch {
			case !f.authAllowed():
				err = f.printf("-ERR [AUTH] Log in over TLS\r\n")
			case arg == "":
				err = f.printf("-ERR USER takes a user name\r\n")
			default:
				user = arg
				err = f.printf("+OK\r\n")
			}
		case "PASS":
			if user == "" {
				err = f.printf("-ERR USER first\r\n")
				break
			}
			var done bool
			done, relayed = f.pop3Login(user, arg)
			if done {
				return
			}
			user = ""
		case "AUTH":
			mech, ir, _ := strings.Cut(arg, " ")
			switch {
			case !f.authAllowed():
				err = f.printf("-ERR [AUTH] Log in over TLS\r\n")
			case !strings.EqualFold(mech, "PLAIN"):
				err = f.printf("-ERR Unsupported authentication mechanism\r\n")
			default:
				if ir == "" {
					if err = f.printf("+ \r\n"); err != nil {
						return
					}
					budget := p.opts.MaxLineLength
					l, rerr := f.lr.readLine(&budget)
					if rerr != nil {
						return
					}
					ir = string(l)
				}
				if ir == "*" {
					err = f.printf("-ERR AUTH cancelled\r\n")
					break
				}
				u, pass, perr := plain(ir)
				if perr != nil {
					f.fails++
					err = f.printf("-ERR [AUTH] Authentication failed\r\n")
					if f.fails >= p.opts.MaxAuthFailures {
						return
					}
					break
				}
				var done bool
				done, relayed = f.pop3Login(u, pass)
				if done {
					return
				}
			}
		default:
			err = f.printf("-ERR Unknown command or not allowed before login\r\n")
		}
		if err != nil {
			return
		}
	}
}

// pop3Dialect is what POP3 answers around a login the proxy relays.
var pop3Dialect = loginDialect{
	proto:       "pop3",
	backend:     (*Proxy).pop3Backend,
	reply:       func(s string) string { return s },
	throttled:   "-ERR [SYS/TEMP] Too many failed logins, try again later",
	failed:      "-ERR [AUTH] Authentication failed",
	authTemp:    "-ERR [SYS/TEMP] Authentication temporarily unavailable",
	unavailable: "-ERR [SYS/TEMP] Mail server unavailable, try again later",
	moved:       "-ERR [SYS/TEMP] Your mailbox moved; log in again",
}

// pop3Login checks the credentials, logs in at the user's backend and
// relays the session.
func (f *front) pop3Login(user, pass string) (done, relayed bool) {
	return f.login(pop3Dialect, user, pass)
}

// pop3Backend connects to host's POP3 service on behalf of client and
// logs in as user. It returns the connection, its reader and the
// backend's +OK reply.
func (p *Proxy) pop3Backend(ctx context.Context, host string, client net.Conn, user, pass string) (net.Conn, *bufio.Reader, string, error) {
	nc, br, err := p.backendConn(ctx, host, p.opts.Ports.POP3, client, backendHello{
		greeting: backendLine,
		ok:       "+OK",
		startTLS: "STLS\r\n",
		started:  backendLine,
		tlsOK:    "+OK",
	})
	if err != nil {
		return nil, nil, "", err
	}
	fail := func(err error) (net.Conn, *bufio.Reader, string, error) { return backendFailed(nc, host, err) }
	if _, err := io.WriteString(nc, "AUTH PLAIN "+plainResponse(user, pass)+"\r\n"); err != nil {
		return fail(err)
	}
	line, err := backendLine(br)
	switch {
	case err != nil:
		return fail(err)
	case strings.HasPrefix(line, "-ERR [SYS/TEMP]"):
		return fail(fmt.Errorf("login: %q", line))
	case strings.HasPrefix(line, "-ERR"):
		return fail(&backendRefusal{line})
	case !strings.HasPrefix(line, "+OK"):
		return fail(fmt.Errorf("login: %q", line))
	}
	return nc, br, line, nil
}

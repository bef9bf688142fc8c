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

// loginDialect is what one protocol (IMAP, POP3) says around a login the
// proxy checks and relays, and how it logs in at the backend. Each reply
// is whole lines without the last CRLF.
type loginDialect struct {
	proto string // for the log: "imap", "pop3"
	// backend connects to host's service on behalf of client, logs in as
	// user and returns the connection, its reader and the backend's
	// success reply (a *backendRefusal for its refusal).
	backend func(p *Proxy, ctx context.Context, host string, client net.Conn, user, pass string) (net.Conn, *bufio.Reader, string, error)
	// reply makes a reply to the login command of a line (IMAP puts the
	// command's tag in front).
	reply       func(line string) string
	throttled   string // the source is throttled; the connection is closed
	failed      string // wrong credentials
	tooMany     string // said after failed once MaxAuthFailures is reached; "" closes without a word
	authTemp    string // the credentials could not be checked
	unavailable string // no backend to log in at
	moved       string // the user's mailbox moved during the relay
}

// login checks the credentials, logs in at the user's backend and relays
// the session, answering in d's words. done: the connection is finished
// with; relayed: the relay has closed it.
func (f *front) login(d loginDialect, user, pass string) (done, relayed bool) {
	p := f.p
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.LoginTimeout)
	defer cancel()
	say := func(line string) bool { return f.printf("%s\r\n", line) == nil }
	u, why, err := f.check(ctx, user, pass)
	if err != nil {
		switch why {
		case failThrottled:
			say(d.throttled)
			return true, false
		case failCredentials:
			if !say(d.failed) {
				return true, false
			}
			if f.fails >= p.opts.MaxAuthFailures {
				if d.tooMany != "" {
					say(d.tooMany)
				}
				return true, false
			}
			return false, false
		}
		return !say(d.authTemp), false
	}
	host, err := p.Route(ctx, u.Address)
	var be net.Conn
	var bbr *bufio.Reader
	var ok string
	if err == nil {
		be, bbr, ok, err = d.backend(p, ctx, host, f.raw, u.Address, pass)
	}
	var refused *backendRefusal
	switch {
	case errors.As(err, &refused):
		p.log.Warn("proxy: backend refused the login", "proto", d.proto, "user", u.Address, "backend", host, "reply", refused.line)
		return !say(d.reply(refused.line)), false
	case err != nil:
		p.log.Warn("proxy: backend unavailable", "proto", d.proto, "user", u.Address, "backend", host, "err", err)
		return !say(d.unavailable), false
	}
	// Filed for Kick before the client is told it is logged in, so that
	// a move that follows the reply ends this session too.
	s := &session{p: p, key: userKey(u.Address), client: f.nc, backend: be, bye: d.moved + "\r\n"}
	s.register()
	if !s.write([]byte(d.reply(ok) + "\r\n")) {
		s.unregister()
		be.Close()
		return true, false
	}
	p.log.Info("proxy: login", "proto", d.proto, "user", u.Address, "remote", f.raw.RemoteAddr().String(), "backend", host)
	fromClient, fromBackend := pending(f.br), pending(bbr)
	f.br, f.lr, bbr = nil, nil, nil
	s.relay(fromClient, fromBackend)
	return true, true
}

// backendHello is how a protocol opens a backend connection: the
// greeting and the reply to its STARTTLS command, each read by a
// function and checked for a prefix.
type backendHello struct {
	greeting func(*bufio.Reader) (string, error)
	ok       string // the greeting's prefix
	startTLS string // the command, with CRLF
	started  func(*bufio.Reader) (string, error)
	tlsOK    string // the prefix of startTLS's success reply
}

// backendConn connects to host's port on behalf of client, reads the
// greeting and, with BackendTLS StartTLS, starts TLS.
func (p *Proxy) backendConn(ctx context.Context, host string, port int, client net.Conn, h backendHello) (net.Conn, *bufio.Reader, error) {
	nc, err := p.dial(ctx, host, port, client.RemoteAddr(), client.LocalAddr(), true)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (net.Conn, *bufio.Reader, error) {
		_, _, _, err = backendFailed(nc, host, err)
		return nil, nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	line, err := h.greeting(br)
	if err != nil {
		return fail(err)
	}
	if !strings.HasPrefix(line, h.ok) {
		return fail(fmt.Errorf("greeting %q", line))
	}
	if p.opts.BackendTLS != StartTLS {
		return nc, br, nil
	}
	if _, err := io.WriteString(nc, h.startTLS); err != nil {
		return fail(err)
	}
	if line, err := h.started(br); err != nil {
		return fail(err)
	} else if !strings.HasPrefix(line, h.tlsOK) {
		return fail(fmt.Errorf("%s: %q", strings.TrimSpace(h.startTLS), line))
	}
	tc, err := p.clientTLS(nc, hostOnly(host))
	if err != nil {
		return nil, nil, err
	}
	return tc, bufio.NewReaderSize(tc, 4096), nil
}

// backendFailed closes a backend connection that failed while logging
// in: a refusal is returned as it is, anything else as ErrUnavailable.
func backendFailed(nc net.Conn, host string, err error) (net.Conn, *bufio.Reader, string, error) {
	nc.Close()
	if _, ok := err.(*backendRefusal); ok {
		return nil, nil, "", err
	}
	return nil, nil, "", fmt.Errorf("%w: %s: %w", ErrUnavailable, host, err)
}

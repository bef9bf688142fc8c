package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/store"
)

// front is a client connection of IMAP or POP3 before its login.
type front struct {
	p     *Proxy
	raw   net.Conn // as accepted: its RemoteAddr is the client
	nc    net.Conn // raw, or TLS over it
	br    *bufio.Reader
	lr    *lineReader
	isTLS bool
	fails int
}

// newFront takes nc, starting TLS at once for an implicit-TLS listener.
// The whole login phase has LoginTimeout.
func (p *Proxy) newFront(nc net.Conn, implicitTLS bool) (*front, error) {
	nc.SetDeadline(time.Now().Add(p.opts.LoginTimeout))
	f := &front{p: p, raw: nc, nc: nc}
	if implicitTLS {
		if p.opts.TLSConfig == nil {
			return nil, errors.New("proxy: implicit TLS without a TLS configuration")
		}
		tc := tls.Server(nc, p.opts.TLSConfig)
		if err := tc.Handshake(); err != nil {
			return nil, err
		}
		f.nc, f.isTLS = tc, true
	}
	f.reset()
	return f, nil
}

func (f *front) reset() {
	f.br = bufio.NewReaderSize(f.nc, 1024)
	f.lr = &lineReader{br: f.br, cont: f.nc, max: f.p.opts.MaxLineLength, refuse: f.imapRefuses}
}

// startTLS upgrades the connection after the reply to STARTTLS or STLS.
// Bytes sent after the command, before the handshake, are refused: they
// would otherwise pass for commands given under TLS.
func (f *front) startTLS() error {
	if f.br.Buffered() > 0 {
		return errors.New("proxy: data after STARTTLS")
	}
	tc := tls.Server(f.nc, f.p.opts.TLSConfig)
	if err := tc.Handshake(); err != nil {
		return err
	}
	f.nc, f.isTLS = tc, true
	f.reset()
	return nil
}

func (f *front) canTLS() bool      { return f.p.opts.TLSConfig != nil && !f.isTLS }
func (f *front) authAllowed() bool { return f.isTLS || f.p.opts.AllowInsecureAuth }

func (f *front) printf(format string, args ...any) error {
	_, err := fmt.Fprintf(f.nc, format, args...)
	return err
}

// loginFailure is how a failed login is answered.
type loginFailure int

const (
	failCredentials loginFailure = iota // wrong password: NO, counted
	failThrottled                       // answered, then closed
	failTemporary                       // the directory or the backend
)

// check authenticates at the proxy. Errors are classified for the reply.
func (f *front) check(ctx context.Context, user, pass string) (*store.User, loginFailure, error) {
	u, err := f.p.opts.Auth.Authenticate(ctx, user, pass, f.raw.RemoteAddr())
	switch {
	case err == nil:
		return u, 0, nil
	case errors.Is(err, auth.ErrThrottled):
		return nil, failThrottled, err
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrAuthzRefused), errors.Is(err, auth.ErrMalformedResponse):
		f.fails++
		return nil, failCredentials, err
	}
	f.p.log.Warn("proxy: login check failed", "remote", f.raw.RemoteAddr().String(), "err", err)
	return nil, failTemporary, err
}

// plain decodes a SASL PLAIN response (RFC 4616); the authorization
// identity, when given, must be the user: the proxy logs in to the
// backend as that user only.
func plain(b64 string) (user, pass string, err error) {
	var raw []byte
	if b64 != "=" {
		if raw, err = base64.StdEncoding.DecodeString(b64); err != nil {
			return "", "", auth.ErrMalformedResponse
		}
	}
	parts := bytes.Split(raw, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return "", "", auth.ErrMalformedResponse
	}
	if len(parts[0]) > 0 && !bytes.Equal(parts[0], parts[1]) {
		return "", "", auth.ErrAuthzRefused
	}
	return string(parts[1]), string(parts[2]), nil
}

// plainResponse is the SASL PLAIN initial response for user and pass.
func plainResponse(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// backendLine reads one response line of a backend, bounded.
func backendLine(br *bufio.Reader) (string, error) {
	budget := 64 << 10
	lr := lineReader{br: br, cont: io.Discard, max: budget}
	line, err := lr.readLine(&budget)
	return string(line), err
}

// addrParts splits an address into host and port for the backend's logs.
func addrParts(a net.Addr) (string, string) {
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), ""
	}
	return h, p
}

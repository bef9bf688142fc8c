package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// deadlineConn gives every Read and Write its own deadline. go-smtp's
// client sets deadlines around commands but clears them while the message
// is written after DATA; this wrapper keeps a stalled server from holding
// a connection beyond the timeout at any step.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// greetedConn replays a greeting in front of a connection whose real
// greeting was read before STARTTLS, since go-smtp's client reads one
// from every connection it is given.
type greetedConn struct {
	net.Conn
	r io.Reader
}

func (c *greetedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// dial opens a session ready for MAIL: connected, greeted, TLS and
// authentication done as configured. addr "unix:PATH" is a unix socket.
func dial(ctx context.Context, cfg *config) (*smtp.Client, error) {
	network, address := "tcp", cfg.addr
	if p, ok := strings.CutPrefix(cfg.addr, "unix:"); ok {
		network, address = "unix", p
	}
	d := net.Dialer{Timeout: cfg.timeout}
	raw, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	var conn net.Conn = &deadlineConn{Conn: raw, timeout: cfg.timeout}
	switch {
	case cfg.implicitTLS:
		tc := tls.Client(conn, cfg.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		conn = tc
	case cfg.startTLS:
		if conn, err = startTLS(ctx, conn, cfg); err != nil {
			raw.Close()
			return nil, err
		}
	}
	var c *smtp.Client
	if cfg.lmtp {
		c = smtp.NewClientLMTP(conn)
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = cfg.timeout
	c.SubmissionTimeout = cfg.timeout
	if err := c.Hello(cfg.ehlo); err != nil {
		c.Close()
		return nil, err
	}
	if cfg.user != "" {
		if err := c.Auth(sasl.NewPlainClient("", cfg.user, cfg.pass)); err != nil {
			c.Close()
			return nil, fmt.Errorf("AUTH PLAIN: %w", err)
		}
	}
	return c, nil
}

// startTLS runs the dialogue up to STARTTLS itself, so that the first
// EHLO already carries the -ehlo name (go-smtp's own STARTTLS helper
// greets as "localhost"), and returns the TLS connection with the
// greeting replayed for go-smtp.
func startTLS(ctx context.Context, conn net.Conn, cfg *config) (net.Conn, error) {
	br := bufio.NewReader(conn)
	tp := textproto.NewReader(br)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	hello := "EHLO"
	if cfg.lmtp {
		hello = "LHLO"
	}
	if _, err := fmt.Fprintf(conn, "%s %s\r\n", hello, cfg.ehlo); err != nil {
		return nil, err
	}
	_, ext, err := tp.ReadResponse(250)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", hello, err)
	}
	offered := false
	for _, l := range strings.Split(ext, "\n")[1:] {
		offered = offered || strings.EqualFold(strings.TrimSpace(l), "STARTTLS")
	}
	if !offered {
		return nil, errors.New("server does not offer STARTTLS")
	}
	if _, err := io.WriteString(conn, "STARTTLS\r\n"); err != nil {
		return nil, err
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, fmt.Errorf("STARTTLS: %w", err)
	}
	if br.Buffered() > 0 {
		// Bytes after the 220 were sent in clear text before the
		// handshake: a server (or a man in the middle) injecting them
		// must not be read as if they came over TLS.
		return nil, errors.New("server sent data after its STARTTLS reply")
	}
	tc := tls.Client(conn, cfg.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	greeting := strings.NewReader("220 TLS established\r\n")
	return &greetedConn{Conn: tc, r: io.MultiReader(greeting, tc)}, nil
}

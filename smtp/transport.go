package smtp

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// TransportKind is the method part of a transport table entry.
type TransportKind string

// The transport kinds the router understands, named as in Postfix.
const (
	// TransportLocal delivers into the local Maildir ("virtual:",
	// "local:", and the seed's "dovecot:" pipe all mean this).
	TransportLocal TransportKind = "local"
	// TransportLMTP delivers to an LMTP server.
	TransportLMTP TransportKind = "lmtp"
	// TransportSMTP relays over SMTP ("smtp:" and "relay:").
	TransportSMTP TransportKind = "smtp"
	// TransportError refuses the recipient with Text.
	TransportError TransportKind = "error"
)

// Transport is a parsed transport table entry (Postfix transport(5)).
type Transport struct {
	Kind TransportKind
	// Network is "tcp" or "unix" for LMTP; "tcp" for SMTP.
	Network string
	// Addr is "host:port" for tcp, a socket path for unix; empty for
	// "smtp:" with no next hop (ordinary MX routing).
	Addr string
	// NoMX is set when the host was written in brackets ("[host]"):
	// connect to its address records, do not look up MX records.
	NoMX bool
	// Text is the reply text of an error transport.
	Text string
	// Spec is the entry as written.
	Spec string
}

// Transports opens the next hops named by the transport table: an
// LMTP or SMTP client, usually from the outbound package, in front of
// the queue so that nothing acknowledged is lost. The router asks for
// TransportLMTP and TransportSMTP entries (with a next hop) only.
type Transports interface {
	Transport(ctx context.Context, t Transport) (Target, error)
}

// TransportsFunc adapts a function to Transports.
type TransportsFunc func(ctx context.Context, t Transport) (Target, error)

// Transport implements Transports.
func (f TransportsFunc) Transport(ctx context.Context, t Transport) (Target, error) {
	return f(ctx, t)
}

// ParseTransport parses a transport table entry:
//
//	lmtp:HOST:PORT  lmtp:inet:HOST:PORT  lmtp:[HOST]:PORT  lmtp:unix:PATH
//	smtp:HOST  smtp:HOST:PORT  smtp:[HOST]  smtp:[HOST]:PORT  smtp:
//	error:TEXT  virtual:  local:  dovecot:
//
// A missing port is 24 for LMTP and 25 for SMTP.
func ParseTransport(spec string) (Transport, error) {
	t := Transport{Spec: spec}
	method, next, ok := strings.Cut(strings.TrimSpace(spec), ":")
	if !ok {
		next = ""
	}
	if strings.ContainsAny(next, "\r\n\x00") {
		return t, fmt.Errorf("smtp: transport %q: control character", spec)
	}
	switch strings.ToLower(method) {
	case "virtual", "local", "dovecot", "maildrop":
		t.Kind = TransportLocal
		return t, nil
	case "error":
		t.Kind = TransportError
		t.Text = strings.TrimSpace(next)
		return t, nil
	case "lmtp":
		t.Kind = TransportLMTP
		if rest, ok := strings.CutPrefix(next, "unix:"); ok {
			if rest == "" {
				return t, fmt.Errorf("smtp: transport %q: empty socket path", spec)
			}
			t.Network, t.Addr = "unix", rest
			return t, nil
		}
		next = strings.TrimPrefix(next, "inet:")
		t.Network = "tcp"
		return t, t.hostPort(next, "24", spec)
	case "smtp", "relay":
		t.Kind = TransportSMTP
		t.Network = "tcp"
		if next == "" {
			return t, nil
		}
		next = strings.TrimPrefix(next, "inet:")
		return t, t.hostPort(next, "25", spec)
	}
	return t, fmt.Errorf("smtp: transport %q: unknown method %q", spec, method)
}

// hostPort parses HOST, HOST:PORT, [HOST] or [HOST]:PORT into t.Addr.
func (t *Transport) hostPort(s, defPort, spec string) error {
	host, port := s, defPort
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return fmt.Errorf("smtp: transport %q: missing ]", spec)
		}
		host, t.NoMX = s[1:end], true
		rest := s[end+1:]
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return fmt.Errorf("smtp: transport %q: junk after ]", spec)
			}
			port = p
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
	}
	if host == "" || strings.ContainsAny(host, " \t[]/@") {
		return fmt.Errorf("smtp: transport %q: bad host", spec)
	}
	if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
		return fmt.Errorf("smtp: transport %q: bad port", spec)
	}
	if t.Kind == TransportLMTP {
		// An LMTP next hop is always a host, never MX-routed.
		t.NoMX = true
	}
	t.Addr = net.JoinHostPort(host, port)
	return nil
}

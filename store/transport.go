package store

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ErrBadTransport is wrapped by the errors of ParseTransport.
var ErrBadTransport = errors.New("store: invalid transport")

// Transport is a parsed transport table entry, a subset of Postfix's
// transport(5) "transport:nexthop" syntax:
//
//	lmtp:HOST:PORT       LMTP over TCP (PORT defaults to 24)
//	lmtp:inet:HOST:PORT  the same, Postfix's explicit form
//	lmtp:unix:PATH       LMTP over a Unix socket
//	smtp:HOST:PORT       SMTP to the MX hosts of HOST (PORT defaults to 25)
//	smtp:[HOST]:PORT     SMTP to HOST itself, no MX lookup
//	smtp:                SMTP to the recipient domain's MX hosts
//	error:TEXT           refuse the mail with TEXT
//
// "relay" is accepted as a synonym of "smtp", as in Postfix. An IPv6
// host is written in brackets: "smtp:[2001:db8::1]:25".
type Transport struct {
	// Method is "lmtp", "smtp" or "error".
	Method string
	// Network is "tcp" or "unix"; empty for error.
	Network string
	// Host is the next hop without brackets; empty for "smtp:".
	Host string
	// Port is the TCP port.
	Port int
	// MX tells to look up the MX records of Host (SMTP without brackets).
	MX bool
	// Path is the Unix socket path.
	Path string
	// Text is the error text.
	Text string
}

// ParseTransport parses a transport spec. Errors wrap ErrBadTransport.
func ParseTransport(spec string) (*Transport, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrBadTransport, spec, why)
	}
	method, next, ok := strings.Cut(strings.TrimSpace(spec), ":")
	if !ok {
		return nil, bad("want METHOD:NEXTHOP")
	}
	switch strings.ToLower(method) {
	case "error":
		if strings.TrimSpace(next) == "" {
			return nil, bad("error needs a text")
		}
		if strings.ContainsAny(next, "\r\n\x00") {
			return nil, bad("control character in text")
		}
		return &Transport{Method: "error", Text: next}, nil
	case "lmtp":
		if path, ok := strings.CutPrefix(next, "unix:"); ok {
			if path == "" || strings.ContainsRune(path, 0) {
				return nil, bad("empty socket path")
			}
			return &Transport{Method: "lmtp", Network: "unix", Path: path}, nil
		}
		next = strings.TrimPrefix(next, "inet:")
		// LMTP never looks up MX records: brackets change nothing.
		host, port, _, err := splitNextHop(next, 24)
		if err != nil {
			return nil, bad(err.Error())
		}
		if host == "" {
			return nil, bad("lmtp needs a host")
		}
		return &Transport{Method: "lmtp", Network: "tcp", Host: host, Port: port}, nil
	case "smtp", "relay":
		if next == "" {
			return &Transport{Method: "smtp", Network: "tcp", Port: 25, MX: true}, nil
		}
		host, port, bracketed, err := splitNextHop(next, 25)
		if err != nil {
			return nil, bad(err.Error())
		}
		if host == "" {
			return nil, bad("empty host")
		}
		_, isIP := netip.ParseAddr(host)
		return &Transport{Method: "smtp", Network: "tcp", Host: host, Port: port, MX: !bracketed && isIP != nil}, nil
	}
	return nil, bad("unknown method (want lmtp, smtp, relay or error)")
}

// splitNextHop parses "host", "host:port", "[host]" or "[host]:port".
func splitNextHop(s string, defPort int) (host string, port int, bracketed bool, err error) {
	port = defPort
	rest := ""
	if strings.HasPrefix(s, "[") {
		i := strings.IndexByte(s, ']')
		if i < 0 {
			return "", 0, false, errors.New("unterminated [")
		}
		host, rest, bracketed = s[1:i], s[i+1:], true
		if rest != "" && !strings.HasPrefix(rest, ":") {
			return "", 0, false, errors.New("junk after ]")
		}
		rest = strings.TrimPrefix(rest, ":")
		v6 := strings.HasPrefix(strings.ToLower(host), "ipv6:")
		if v6 {
			host = host[5:]
		}
		if v6 || strings.Contains(host, ":") {
			ip, err := netip.ParseAddr(host)
			if err != nil || !ip.Is6() {
				return "", 0, false, errors.New("invalid IPv6 address")
			}
			host = ip.String()
		}
	} else {
		var p string
		var hasPort bool
		host, p, hasPort = strings.Cut(s, ":")
		if hasPort {
			rest = p
			if rest == "" {
				return "", 0, false, errors.New("empty port")
			}
		}
	}
	if rest != "" {
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, false, fmt.Errorf("invalid port %q", rest)
		}
		port = n
	}
	if host != "" && !strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			d, err := parseDomain(host)
			if err != nil {
				return "", 0, false, fmt.Errorf("invalid host %q", host)
			}
			host = DomainASCII(d)
		}
	}
	return host, port, bracketed, nil
}

// String returns the spec in canonical form; ParseTransport(t.String())
// gives t back.
func (t *Transport) String() string {
	switch t.Method {
	case "error":
		return "error:" + t.Text
	case "lmtp":
		if t.Network == "unix" {
			return "lmtp:unix:" + t.Path
		}
		return "lmtp:" + hostPort(t.Host, t.Port, false)
	}
	if t.Host == "" {
		return "smtp:"
	}
	return "smtp:" + hostPort(t.Host, t.Port, !t.MX)
}

func hostPort(host string, port int, bracket bool) string {
	if strings.Contains(host, ":") {
		return net.JoinHostPort(host, strconv.Itoa(port))
	}
	if bracket {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

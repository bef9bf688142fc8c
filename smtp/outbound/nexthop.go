package outbound

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Protocol is how a next hop is spoken to.
type Protocol int

const (
	// SMTP is plain SMTP, upgraded with STARTTLS when offered.
	SMTP Protocol = iota
	// SMTPS is SMTP inside TLS from the first byte (RFC 8314).
	SMTPS
	// LMTP is the local mail transfer protocol (RFC 2033).
	LMTP
)

// NextHop says where a message goes next. It is written in the style of
// Postfix's transport table:
//
//	example.org                  MX lookup for example.org, default port
//	smtp:example.org             the same
//	smtp:example.org:2525        MX lookup, port 2525
//	smtp:[mail.example.org]:587  that host, no MX lookup
//	smtps:[mail.example.org]:465 that host with implicit TLS
//	lmtp:127.0.0.1:24            LMTP over TCP (also lmtp:inet:HOST:PORT)
//	lmtp:unix:/run/dovecot/lmtp  LMTP over a Unix socket
type NextHop struct {
	Protocol Protocol
	// Host is the domain (when MX is set) or the host name or IP address
	// to connect to; for a Unix socket it is the socket's path.
	Host string
	// Port is 0 for the client's default.
	Port int
	// MX asks for a mail exchanger lookup on Host.
	MX bool
	// Unix is set for an LMTP Unix-domain socket.
	Unix bool
}

// ParseNextHop parses a transport-table style next hop (see NextHop).
func ParseNextHop(s string) (NextHop, error) {
	var h NextHop
	orig := s
	if s == "" || len(s) > 1024 || strings.ContainsAny(s, " \t\r\n") {
		return h, fmt.Errorf("outbound: invalid next hop %q", orig)
	}
	proto, rest, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		proto, rest = "smtp", s
	case proto == "smtp" || proto == "smtps" || proto == "lmtp":
	default:
		// "host:port" without a protocol.
		proto, rest = "smtp", s
	}
	switch proto {
	case "smtps":
		h.Protocol = SMTPS
	case "lmtp":
		h.Protocol = LMTP
		if p, ok := strings.CutPrefix(rest, "unix:"); ok {
			if !strings.HasPrefix(p, "/") {
				return h, fmt.Errorf("outbound: LMTP socket path must be absolute in %q", orig)
			}
			h.Unix, h.Host = true, p
			return h, nil
		}
		rest = strings.TrimPrefix(rest, "inet:")
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return h, fmt.Errorf("outbound: unbalanced brackets in %q", orig)
		}
		host = rest[1:end]
		after := rest[end+1:]
		if after != "" {
			p, ok := strings.CutPrefix(after, ":")
			if !ok {
				return h, fmt.Errorf("outbound: junk after ] in %q", orig)
			}
			port = p
		}
	} else {
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i+1:]
		}
		// LMTP and implicit TLS name hosts, not mail domains.
		h.MX = h.Protocol == SMTP
	}
	h.Host = strings.TrimSuffix(strings.ToLower(host), ".")
	if !validHost(h.Host) {
		return h, fmt.Errorf("outbound: invalid host in %q", orig)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return h, fmt.Errorf("outbound: invalid port in %q", orig)
		}
		h.Port = n
	}
	if h.Protocol == LMTP && h.Port == 0 {
		h.Port = 24
	}
	return h, nil
}

// String returns the next hop in the form ParseNextHop reads.
func (h NextHop) String() string {
	var proto string
	switch h.Protocol {
	case SMTPS:
		proto = "smtps"
	case LMTP:
		proto = "lmtp"
		if h.Unix {
			return "lmtp:unix:" + h.Host
		}
	default:
		proto = "smtp"
	}
	host := h.Host
	if !h.MX {
		host = "[" + host + "]"
	}
	if h.Port != 0 {
		return proto + ":" + host + ":" + strconv.Itoa(h.Port)
	}
	return proto + ":" + host
}

// validHost accepts an IP address or a host name of letters, digits,
// hyphens, underscores and dots (and UTF-8, for internationalised
// domains).
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 255 || !utf8.ValidString(h) || strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") || strings.Contains(h, "..") {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c >= 0x80) {
			return false
		}
	}
	return true
}

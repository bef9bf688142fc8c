package smtp

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mailagent/mailagent/internal/headerenc"
	"github.com/mailagent/mailagent/smtp/mail"
)

// maxHops is the Received count above which a message is taken to be
// looping (RFC 5321 section 6.3 suggests at least 100; Postfix uses 50).
const maxHops = 50

// headScanLimit bounds how much of a message is scanned for header
// fields; a header section longer than this is scanned only that far.
const headScanLimit = 256 << 10

var errTooManyHops = &mail.Error{Code: 554, EnhancedCode: [3]int{5, 4, 6},
	Message: "Too many Received header fields: mail loop?"}

// headerInfo is what the servers need to know about a message's header
// section.
type headerInfo struct {
	received  int
	messageID bool
	date      bool
	// senders are the unfolded values of the From and Sender fields
	// (names compared without case, white space before the colon
	// allowed as RFC 5322's obsolete syntax does), in order.
	senders []string
}

// scanHeader reads the header section at the start of msg (up to the
// first empty line) and counts the fields the servers act on.
func scanHeader(msg []byte) headerInfo {
	var h headerInfo
	sender := false // the last field was From or Sender: continuations add to it
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if sender {
				h.senders[len(h.senders)-1] += string(line)
			}
			continue
		}
		sender = false
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := strings.TrimRight(string(line[:colon]), " \t")
		switch {
		case strings.EqualFold(name, "From"), strings.EqualFold(name, "Sender"):
			h.senders = append(h.senders, string(line[colon+1:]))
			sender = true
		case strings.EqualFold(name, "Received"):
			h.received++
		case strings.EqualFold(name, "Message-ID"):
			h.messageID = true
		case strings.EqualFold(name, "Date"):
			h.date = true
		}
	}
	return h
}

// splitFields splits a block of header fields, each ending in CRLF, into
// the fields without their final CRLF: a line that starts with white
// space continues the field before it.
func splitFields(block string) []string {
	var out []string
	for _, line := range strings.SplitAfter(block, "\n") {
		switch {
		case strings.TrimRight(line, "\r\n") == "":
		case (line[0] == ' ' || line[0] == '\t') && len(out) > 0:
			out[len(out)-1] += "\r\n" + strings.TrimRight(line, "\r\n")
		default:
			out = append(out, strings.TrimRight(line, "\r\n"))
		}
	}
	return out
}

// protocolName is the "with" keyword of RFC 3848 for the session.
func protocolName(lmtp, esmtp, tls, auth bool) string {
	p := "SMTP"
	switch {
	case lmtp:
		p = "LMTP"
	case esmtp:
		p = "ESMTP"
	}
	if tls {
		p += "S"
	}
	if auth {
		p += "A"
	}
	return p
}

// receivedHeader builds the trace field of RFC 5321 section 4.4, with the
// TLS version and cipher and the authenticated user in comments. The
// recipient is named only when there is exactly one, so that a copy does
// not disclose the other recipients. Every part from outside goes
// through headerenc; a HELO name that is not a domain or an address
// literal is kept in the comment, as Postfix does, with "unknown" in its
// place. Without SMTPUTF8 the field stays ASCII: an internationalised
// HELO name is written as its A-labels, other UTF-8 as encoded-words in
// the comment.
func receivedHeader(hostname, proto string, env *mail.Envelope) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	ip := addrIP(env.RemoteAddr)
	var info []string
	if name, ok := headerenc.HostName(env.Helo, env.SMTPUTF8); ok {
		b.WriteString(name)
	} else {
		b.WriteString("unknown")
		if env.Helo != "" {
			info = append(info, "helo="+headerenc.Comment(env.Helo, env.SMTPUTF8))
		}
	}
	if ip != "" {
		info = append(info, "["+ip+"]")
	}
	if len(info) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(info, " "))
	}
	if env.AuthUser != "" {
		fmt.Fprintf(&b, "\r\n\t(Authenticated sender: %s)", headerenc.CommentText(env.AuthUser))
	}
	fmt.Fprintf(&b, "\r\n\tby %s (mailagent) with %s", headerenc.Domain(hostname), headerenc.Value(proto))
	if env.ID != "" {
		fmt.Fprintf(&b, " id %s", headerenc.Value(env.ID))
	}
	if env.TLS != nil {
		fmt.Fprintf(&b, "\r\n\t(version=%s cipher=%s)",
			tlsVersionName(env.TLS.Version), tlsCipherName(env.TLS.CipherSuite))
	}
	if len(env.Recipients) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor %s", headerenc.Path(env.Recipients[0]))
	}
	b.WriteString(";\r\n\t")
	b.WriteString(env.Received.Format(time.RFC1123Z))
	return b.String()
}

func addrIP(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return ""
}

// newMessageID returns a Message-ID value (with angle brackets) under
// hostname, unique without coordination (128 random bits).
func newMessageID(hostname string) string {
	var r [16]byte
	_, _ = rand.Read(r[:])
	return "<" + hex.EncodeToString(r[:]) + "@" + hostname + ">"
}

// newID returns a short random transaction identifier for logs and the
// Received field.
func newID() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return strings.ToUpper(hex.EncodeToString(r[:]))
}

// tlsVersionName names a TLS version the way Received fields usually do.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS1.0"
	case tls.VersionTLS11:
		return "TLS1.1"
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return "unknown"
}

func tlsCipherName(id uint16) string { return tls.CipherSuiteName(id) }

package dnsauth

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/mailagent/mailagent/internal/headerenc"
)

// AuthResults gathers the checks made on a received message, to be
// written as its Authentication-Results field (RFC 8601). Nil or empty
// members are left out, except DKIM, which is written as dkim=none when
// the message had no signature and DKIMChecked is set.
type AuthResults struct {
	IPRev       *IPRevResult
	SPF         *SPFResult
	DKIM        []DKIMResult
	DKIMChecked bool
	DMARC       *DMARCResult
	// UTF8 lets host names (the HELO identity, the PTR name) be written
	// in UTF-8: set it for a message that travels with SMTPUTF8. Without
	// it the field stays ASCII: A-labels, or encoded-words for a name
	// that is not a valid internationalised domain name.
	UTF8 bool
}

// Header returns the Authentication-Results field, folded and ending in
// CRLF, to prepend to the message. authservID names this server (usually
// its host name); it is what later readers trust the field by, and what
// StripAuthResults removes from incoming mail.
func (a AuthResults) Header(authservID string) string {
	var parts []string
	if a.IPRev != nil {
		p := fmt.Sprintf("iprev=%s policy.iprev=%s", a.IPRev.Status, a.IPRev.IP)
		if len(a.IPRev.Names) > 0 {
			p += " (" + a.hostComment(a.IPRev.Names[0]) + ")"
		}
		parts = append(parts, p)
	}
	if a.SPF != nil {
		ptype := "smtp.mailfrom"
		value := a.SPF.Sender
		if a.SPF.Identity == "helo" {
			ptype, value = "smtp.helo", a.SPF.Domain
			if name, ok := headerenc.HostName(value, a.UTF8); ok {
				value = name
			} else {
				value = headerenc.Comment(value, a.UTF8)
			}
		}
		parts = append(parts, fmt.Sprintf("spf=%s %s=%s", a.SPF.Status, ptype, headerenc.Value(value)))
	}
	if len(a.DKIM) == 0 && a.DKIMChecked {
		parts = append(parts, "dkim=none")
	}
	for _, d := range a.DKIM {
		p := fmt.Sprintf("dkim=%s", d.Status)
		if d.Status != DKIMPass && d.Err != nil {
			p += " (" + headerenc.CommentText(d.Err.Error()) + ")"
		}
		if d.Domain != "" {
			p += " header.d=" + headerenc.Value(d.Domain)
		}
		if d.Selector != "" {
			p += " header.s=" + headerenc.Value(d.Selector)
		}
		if d.Algorithm != "" {
			p += " header.a=" + headerenc.Value(d.Algorithm)
		}
		if d.HeaderB != "" {
			p += " header.b=" + headerenc.Value(d.HeaderB)
		}
		parts = append(parts, p)
	}
	if a.DMARC != nil {
		p := fmt.Sprintf("dmarc=%s", a.DMARC.Status)
		if a.DMARC.Policy != "" {
			p += fmt.Sprintf(" (p=%s dis=%s)", a.DMARC.Policy, a.DMARC.Disposition)
		}
		if a.DMARC.Domain != "" {
			p += " header.from=" + headerenc.Value(a.DMARC.Domain)
		}
		parts = append(parts, p)
	}
	var b strings.Builder
	b.WriteString("Authentication-Results: " + headerenc.Value(authservID))
	if len(parts) == 0 {
		b.WriteString("; none\r\n")
		return b.String()
	}
	for _, p := range parts {
		b.WriteString(";\r\n\t" + p)
	}
	b.WriteString("\r\n")
	return b.String()
}

// hostComment returns a host name for a comment: as HostName writes it
// when it is a domain, else as comment text.
func (a AuthResults) hostComment(name string) string {
	if n, ok := headerenc.HostName(name, a.UTF8); ok {
		return n
	}
	return headerenc.Comment(name, a.UTF8)
}

// AuthServID returns the authserv-id of an Authentication-Results value:
// the first token after any leading comments and whitespace, up to the
// first ";" or whitespace. It returns "" when there is none.
func AuthServID(value string) string {
	s := skipCFWS(value)
	end := strings.IndexAny(s, "; \t\r\n(")
	if end < 0 {
		end = len(s)
	}
	id := s[:end]
	if strings.HasPrefix(id, `"`) {
		// A quoted-string authserv-id (RFC 8601 uses "value").
		if j := strings.IndexByte(s[1:], '"'); j >= 0 {
			id = s[1 : j+1]
		}
	}
	return id
}

// skipCFWS drops leading whitespace and nested comments.
func skipCFWS(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if !strings.HasPrefix(s, "(") {
			return s
		}
		depth := 0
		i := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				break
			}
		}
		if i >= len(s) {
			return ""
		}
		s = s[i+1:]
	}
}

// StripAuthResults returns msg without the Authentication-Results fields
// whose authserv-id is authservID (compared without case): a receiver must
// remove those before adding its own, or a sender could forge our verdict
// (RFC 8601 section 5). The body is streamed, not read. removed counts the
// fields dropped.
func StripAuthResults(msg io.Reader, authservID string) (out io.Reader, removed int, err error) {
	br := bufio.NewReader(msg)
	hdr, err := readHeader(br)
	if err != nil {
		return nil, 0, err
	}
	var kept bytes.Buffer
	kept.Grow(len(hdr))
	fields := splitHeader(hdr)
	j := leadingJunk(hdr, fields)
	kept.Write(hdr[:j])
	n := j
	for _, f := range fields {
		n += len(f.raw)
		if strings.EqualFold(f.name, "Authentication-Results") &&
			strings.EqualFold(AuthServID(f.value()), authservID) {
			removed++
			continue
		}
		kept.WriteString(f.raw)
	}
	kept.Write(hdr[n:]) // the blank line ending the header

	return io.MultiReader(bytes.NewReader(kept.Bytes()), br), removed, nil
}

// leadingJunk returns the length of the text before the first field.
func leadingJunk(hdr []byte, fields []headerField) int {
	if len(fields) == 0 {
		return 0
	}
	return bytes.Index(hdr, []byte(fields[0].raw))
}

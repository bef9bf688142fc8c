package imapwire

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// MaxURL bounds the length of an IMAP URL ParseURL takes.
const MaxURL = 8 << 10

// URL is an IMAP URL (RFC 5092) naming one message or part of one, the
// only kind CATENATE (RFC 4469) takes: absolute ("imap://user@host/...")
// or relative to the server ("/mailbox/;UID=n"), with URL-PARTIAL's
// range (RFC 5550).
type URL struct {
	// Absolute: the URL came with its scheme and server. User, Auth,
	// Host and Port are then set as given (User and Auth decoded; Port
	// 0 when absent).
	Absolute bool
	User     string
	Auth     string
	Host     string
	Port     int

	// Mailbox is the mailbox's name, decoded (UTF-8); empty for a URL
	// relative to the selected mailbox (";UID=5/;SECTION=1", RFC 5092
	// section 7.1).
	Mailbox     string
	UIDValidity uint32 // 0 when absent
	UID         uint32
	// Section is the part of the message; nil for the whole message.
	Section *imap.FetchItemBodySection
	// Partial is ";PARTIAL=offset[.length]"; nil when absent. Without a
	// length, Size is -1: to the end.
	Partial *imap.SectionPartial
	// URLAuth: the URL carries ";URLAUTH=" or ";EXPIRE=" (RFC 4467),
	// which the server does not grant.
	URLAuth bool
}

// ErrURL is ParseURL's error for anything but a valid IMAP URL naming a
// message or a part of one.
var ErrURL = errors.New("imapwire: not an IMAP message URL")

// ParseURL parses an IMAP URL naming a message, as CATENATE's URL part.
func ParseURL(s string) (*URL, error) {
	if len(s) > MaxURL || s == "" {
		return nil, ErrURL
	}
	u := &URL{}
	rest := s
	if hasPrefixFold(rest, "imap://") {
		u.Absolute = true
		rest = rest[len("imap://"):]
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return nil, ErrURL
		}
		if !u.authority(rest[:i]) {
			return nil, ErrURL
		}
		rest = rest[i:]
	}
	var mbox, params string
	switch {
	case !u.Absolute && hasPrefixFold(rest, ";UID="):
		params = rest // relative to the selected mailbox
	case strings.HasPrefix(rest, "/"):
		rest = rest[1:]
		// The mailbox holds no raw ";" (RFC 5092's bchar has none), so
		// "/;" starts the first parameter after it.
		i := strings.Index(rest, "/;")
		if i < 0 {
			return nil, ErrURL
		}
		mbox, params = rest[:i], rest[i+1:]
		if mbox == "" {
			return nil, ErrURL
		}
	default:
		return nil, ErrURL
	}
	if j := strings.IndexByte(mbox, ';'); j >= 0 {
		v, ok := cutFold(mbox[j:], ";UIDVALIDITY=")
		if !ok {
			return nil, ErrURL
		}
		if u.UIDValidity, ok = nzNumber(v); !ok {
			return nil, ErrURL
		}
		mbox = mbox[:j]
	}
	name, ok := pctDecode(mbox, isBChar)
	if !ok || (name == "" && mbox != "") || !utf8.ValidString(name) || strings.ContainsFunc(name, isControl) {
		return nil, ErrURL
	}
	u.Mailbox = name
	// The parameters, in RFC 5092's order: ;UID=, ;SECTION=, ;PARTIAL=,
	// then ;EXPIRE= and ;URLAUTH=.
	segs := strings.Split(params, "/;")
	segs[0] = strings.TrimPrefix(segs[0], ";")
	v, ok := cutFold(";"+segs[0], ";UID=")
	if !ok {
		return nil, ErrURL
	}
	if u.UID, ok = nzNumber(v); !ok {
		return nil, ErrURL
	}
	segs = segs[1:]
	if len(segs) > 0 {
		if v, ok := cutFold(";"+segs[0], ";SECTION="); ok {
			sec, ok := pctDecode(v, isBChar)
			if !ok {
				return nil, ErrURL
			}
			if u.Section, ok = parseSection(sec); !ok {
				return nil, ErrURL
			}
			segs = segs[1:]
		}
	}
	if len(segs) > 0 {
		if v, ok := cutFold(";"+segs[0], ";PARTIAL="); ok {
			if u.Partial, ok = parsePartial(v); !ok {
				return nil, ErrURL
			}
			segs = segs[1:]
		}
	}
	if len(segs) > 0 {
		// Only URLAUTH's parameters may follow, and the last segment
		// may hold several (";EXPIRE=...;URLAUTH=...").
		if len(segs) > 1 {
			return nil, ErrURL
		}
		if _, ok := cutFold(";"+segs[0], ";EXPIRE="); !ok {
			if _, ok := cutFold(";"+segs[0], ";URLAUTH="); !ok {
				return nil, ErrURL
			}
		}
		u.URLAuth = true
	}
	return u, nil
}

// authority reads "[user[;AUTH=type]@]host[:port]".
func (u *URL) authority(a string) bool {
	if at := strings.LastIndexByte(a, '@'); at >= 0 {
		info := a[:at]
		a = a[at+1:]
		if j := strings.IndexByte(info, ';'); j >= 0 {
			v, ok := cutFold(info[j:], ";AUTH=")
			if !ok {
				return false
			}
			if v != "*" {
				if v, ok = pctDecode(v, isAChar); !ok || v == "" {
					return false
				}
			}
			u.Auth = v
			info = info[:j]
		}
		user, ok := pctDecode(info, isAChar)
		if !ok || (user == "" && u.Auth == "") || strings.ContainsFunc(user, isControl) {
			return false
		}
		u.User = user
	}
	host := a
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return false
		}
		host, a = a[:end+1], a[end+1:]
	} else if j := strings.IndexByte(a, ':'); j >= 0 {
		host, a = a[:j], a[j:]
	} else {
		a = ""
	}
	if host == "" || strings.ContainsFunc(host, func(r rune) bool { return !isHostChar(r) }) {
		return false
	}
	u.Host = host
	if a != "" {
		if a[0] != ':' || len(a) < 2 || len(a) > 6 {
			return false
		}
		p, err := strconv.Atoi(a[1:])
		if err != nil || p < 0 || p > 65535 || a[1] == '+' || a[1] == '-' {
			return false
		}
		u.Port = p
	}
	return true
}

// parseSection parses a decoded ";SECTION=" as a FETCH section's text,
// with the command parser; no literals.
func parseSection(sec string) (*imap.FetchItemBodySection, bool) {
	if sec == "" || strings.ContainsAny(sec, "{[]\r\n") || strings.ContainsFunc(sec, isControl) {
		return nil, false
	}
	src := strings.NewReader("[" + sec + "]")
	r := NewReader(bufio.NewReaderSize(src, 16), nil)
	r.Limits.setDefaults()
	r.ended = true // nothing to skip after an error
	var bs *imap.FetchItemBodySection
	var err error
	func() {
		defer r.recover(&err)
		bs = r.section()
	}()
	if err != nil {
		return nil, false
	}
	if _, err := r.br.ReadByte(); err != io.EOF {
		return nil, false
	}
	return bs, true
}

// parsePartial parses URL-PARTIAL's "offset[.length]" (RFC 5550).
func parsePartial(v string) (*imap.SectionPartial, bool) {
	off, n, hasLen := strings.Cut(v, ".")
	o, ok := number(off)
	if !ok {
		return nil, false
	}
	p := &imap.SectionPartial{Offset: int64(o), Size: -1}
	if hasLen {
		l, ok := nzNumber(n)
		if !ok {
			return nil, false
		}
		p.Size = int64(l)
	}
	return p, true
}

// number parses RFC 3501's number: 1 to 10 digits, at most 2^32-1.
func number(s string) (uint32, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<32-1 {
		return 0, false
	}
	return uint32(n), true
}

// nzNumber parses RFC 3501's nz-number.
func nzNumber(s string) (uint32, bool) {
	if s == "" || s[0] == '0' {
		return 0, false
	}
	return number(s)
}

// cutFold returns what follows prefix, matched without regard to ASCII
// case.
func cutFold(s, prefix string) (string, bool) {
	if !hasPrefixFold(s, prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// pctDecode decodes %XX escapes in s, whose other bytes must pass ok.
func pctDecode(s string, ok func(byte) bool) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) {
				return "", false
			}
			h, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", false
			}
			b.WriteByte(byte(h))
			i += 2
			continue
		}
		if !ok(c) {
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// isAChar is RFC 5092's achar without its escapes: unreserved,
// sub-delims-sh, "&", "=" and "~".
func isAChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$'()*+,&=", c) >= 0
}

// isBChar is RFC 5092's bchar without its escapes: achar, ":", "@"
// and "/".
func isBChar(c byte) bool { return isAChar(c) || c == ':' || c == '@' || c == '/' }

// isHostChar is a character of a host: a reg-name, or an IP literal.
func isHostChar(r rune) bool {
	return r < 0x80 && (isAChar(byte(r)) || r == '%' || r == '[' || r == ']' || r == ':' || r == ';')
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Package headerenc is the one encoder for everything a server writes
// into a message header from outside input: envelope addresses, HELO
// names, authenticated user names, remote replies and host names, and
// authentication results. Each function returns text that fits its
// field's grammar (RFC 5322, RFC 5321 section 4.4, RFC 3464, RFC 6533,
// RFC 8601) and can never start a field of its own: the output holds no
// CR, LF, NUL or other control character (C0, DEL or C1), and no invalid
// UTF-8, whatever the input.
//
// The servers refuse such input before it reaches a header; the encoder
// is the second line, so that a path that forgets to check cannot be
// used to inject header fields.
package headerenc

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// isControl reports a character no header value may carry: the C0
// controls (HTAB included: the encoder never needs one inside a value),
// DEL and the C1 controls.
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r < 0xa0)
}

// clean returns s as valid UTF-8 with every control character replaced
// by a space: a reply split over lines stays readable on one.
func clean(s string) string {
	if s == "" {
		return s
	}
	ok := utf8.ValidString(s)
	if ok {
		for _, r := range s {
			if isControl(r) {
				ok = false
				break
			}
		}
	}
	if ok {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
}

// Text returns s as unstructured text (RFC 5322 section 3.2.5), for
// fields such as Diagnostic-Code whose value is free text.
func Text(s string) string { return clean(s) }

// CommentText returns s as the content of a comment (RFC 5322 section
// 3.2.2), without the parentheses: parentheses and backslashes are
// escaped as quoted-pairs, so the comment ends where the writer ends it.
func CommentText(s string) string {
	s = clean(s)
	if !strings.ContainsAny(s, `()\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '(' || c == ')' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// quoted returns s as a quoted-string (RFC 5322 section 3.2.4).
func quoted(s string) string {
	s = clean(s)
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// tspecials are the characters an RFC 2045 token may not hold.
const tspecials = `()<>@,;:\"/[]?=`

// Value returns v as an RFC 2045 value, a token or else a quoted-string:
// the grammar of Authentication-Results properties and reasons (RFC
// 8601 section 2.2). An address (local-part@domain) whose parts are
// dot-atoms stays unquoted, as RFC 8601 allows for pvalue.
func Value(v string) string {
	if v == "" {
		return `""`
	}
	if isToken(v) {
		return v
	}
	if l, d, ok := strings.Cut(v, "@"); ok && isDotAtom(l) && isDotAtom(d) {
		return v
	}
	return quoted(v)
}

func isToken(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(tspecials, c) >= 0 {
			return false
		}
	}
	return v != ""
}

// isAtext reports an atext character of RFC 5322 section 3.2.3, or a
// byte of a UTF-8 sequence (RFC 6532 section 3.2 adds UTF8-non-ascii).
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isDotAtom reports whether s is a dot-atom-text: atext runs separated
// by single dots, valid UTF-8 and without controls.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !isAtext(s[i]) {
			return false
		}
	}
	return clean(s) == s
}

// isLiteral reports a domain-literal of printable ASCII dtext ("[...]").
func isLiteral(s string) bool {
	if len(s) < 3 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '[' || c == ']' || c == '\\' {
			return false
		}
	}
	return true
}

// Domain returns d as a domain (RFC 5322 section 3.4.1): a dot-atom or
// a domain-literal as it is; anything else with each character that
// cannot appear in a dot-atom, and each empty label, replaced by "?". It serves the host names
// of Received, Reporting-MTA and Remote-MTA, and an address's domain.
func Domain(d string) string {
	if isDotAtom(d) || isLiteral(d) {
		return d
	}
	d = clean(d)
	out := []byte(d)
	for i, c := range out {
		if c != '.' && !isAtext(c) {
			out[i] = '?'
		}
	}
	// Empty labels ("a..b", a trailing dot) would not be a dot-atom.
	labels := strings.Split(string(out), ".")
	for i, l := range labels {
		if l == "" {
			labels[i] = "?"
		}
	}
	return strings.Join(labels, ".")
}

// IsDomain reports whether Domain(d) would return d unchanged: a name
// fit to write as it is.
func IsDomain(d string) bool { return isDotAtom(d) || isLiteral(d) }

// LocalPart returns an address's local part as a dot-atom when it is
// one, else as a quoted-string.
func LocalPart(l string) string {
	if isDotAtom(l) {
		return l
	}
	return quoted(l)
}

// AddrSpec returns addr, an envelope address as go-smtp hands it over
// (local part unquoted, split at its last "@"), as an addr-spec: the
// local part re-quoted where it needs it, the domain through Domain. An
// address without "@" is a local part alone (the postmaster of RFC
// 5321 section 4.5.1).
func AddrSpec(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return LocalPart(addr)
	}
	return LocalPart(addr[:i]) + "@" + Domain(addr[i+1:])
}

// Path returns addr as an angle-addr: "<addr-spec>", and "<>" for the
// null reverse path. It serves Return-Path, Received's "for" clause and
// the To field of notifications.
func Path(addr string) string {
	if addr == "" {
		return "<>"
	}
	return "<" + AddrSpec(addr) + ">"
}

// Unitext returns addr as a utf-8-addr-unitext of RFC 6533 section 3,
// the generic-address of a "utf-8" address type in a delivery status
// notification: backslash, "+", "=", controls and invalid UTF-8 are
// written as \x{HEX}.
func Unitext(addr string) string {
	var b strings.Builder
	for i := 0; i < len(addr); {
		r, n := utf8.DecodeRuneInString(addr[i:])
		i += n
		if isControl(r) || r == '\\' || r == '+' || r == '=' || r == ' ' {
			b.WriteString(`\x{`)
			b.WriteString(strings.ToUpper(strconv.FormatUint(uint64(r), 16)))
			b.WriteByte('}')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// IsFieldName reports whether name is a field name of RFC 5322 section
// 3.6.8: printable ASCII but the colon.
func IsFieldName(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return name != ""
}

// Field returns a complete header field given by a writer (without its
// final CRLF) reduced to exactly one field: its folds (CRLF followed by
// a space or tab and something more than white space) kept, every other
// CR, LF and control character but HTAB dropped, and "" when it does not
// start with a field name and a colon. It is the guard for fields a
// check or signer builds itself.
func Field(f string) string {
	name, _, ok := strings.Cut(f, ":")
	if !ok || !IsFieldName(name) {
		return ""
	}
	lines := strings.Split(f, "\n")
	var b strings.Builder
	b.Grow(len(f))
	for i, l := range lines {
		l = dropControls(strings.TrimSuffix(l, "\r"))
		if i > 0 && l != "" && (l[0] == ' ' || l[0] == '\t') && strings.TrimLeft(l, " \t") != "" {
			b.WriteString("\r\n")
		}
		// Any other line break is one the writer did not mean, or one
		// before a line of white space, which some readers take for the
		// end of the header: the lines are joined.
		b.WriteString(l)
	}
	return b.String()
}

// dropControls removes every control character but HTAB, and repairs
// invalid UTF-8.
func dropControls(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r != '\t' && isControl(r) {
			return -1
		}
		return r
	}, s)
}

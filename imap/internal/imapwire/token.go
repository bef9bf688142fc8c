package imapwire

import (
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// isAtomChar reports whether c is an ATOM-CHAR (RFC 9051 section 9):
// not a control, space or one of ( ) { % * " \ ].
func isAtomChar(c byte) bool {
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return c > 0x20 && c < 0x7f
}

// isAStringChar reports whether c is an ASTRING-CHAR: an ATOM-CHAR or
// "]"; or an 8-bit byte, as clients send UTF-8 search words and names
// unquoted and Dovecot takes them.
func isAStringChar(c byte) bool { return isAtomChar(c) || c == ']' || c >= 0x80 }

// isListChar reports whether c may appear in an unquoted LIST pattern.
func isListChar(c byte) bool { return isAStringChar(c) || c == '%' || c == '*' }

// readWhile reads the bytes for which ok holds, at least one.
func (r *Reader) readWhile(ok func(byte) bool, what string) string {
	var b []byte
	for {
		c := r.peek()
		if !ok(c) {
			break
		}
		b = append(b, r.take())
	}
	if len(b) == 0 {
		r.syntax("Expected %s", what)
	}
	return string(b)
}

// atom reads an atom.
func (r *Reader) atom(what string) string { return r.readWhile(isAtomChar, what) }

// upperAtom reads an atom and upper-cases its ASCII letters only: command
// and item names are ASCII, and "ſ" is not "S" on the wire.
func (r *Reader) upperAtom(what string) string { return asciiUpper(r.atom(what)) }

func asciiUpper(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'a' && c <= 'z' {
					b[j] = c - 'a' + 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// quoted reads a quoted string after its opening quote is peeked. Its
// bytes may be UTF-8 (RFC 9051 and RFC 6855); CR and LF may not occur.
func (r *Reader) quoted() string {
	r.expect('"', "a quoted string")
	var b []byte
	for {
		c := r.take()
		switch c {
		case '"':
			// Not checked for UTF-8 here: SEARCH strings are in their
			// CHARSET, and mailbox names are checked when decoded.
			return string(b)
		case '\\':
			c = r.take()
			if c != '"' && c != '\\' {
				r.syntax("Invalid escape in a quoted string")
			}
		case '\r', '\n':
			// NUL and other controls are read: a mailbox name holding
			// one is refused as a name, [CLIENTBUG].
			r.syntax("Unterminated quoted string")
		}
		b = append(b, c)
	}
}

// literal reads a literal string, "~{n}" (literal8) only when binary.
func (r *Reader) literal(binary bool) []byte {
	if r.peek() == '~' {
		if !binary {
			r.syntax("Binary literal not allowed here")
		}
		r.take()
	}
	return r.literalBytes(r.literalHeader(litString))
}

// str reads a string: quoted or literal.
func (r *Reader) str() string {
	switch r.peek() {
	case '"':
		return r.quoted()
	case '{':
		return string(r.literal(false))
	}
	r.syntax("Expected a string")
	return ""
}

// astring reads an atom, a quoted string or a literal.
func (r *Reader) astring(what string) string {
	switch r.peek() {
	case '"', '{':
		return r.str()
	}
	return r.readWhile(isAStringChar, what)
}

// nstring reads NIL or a string; ok is false for NIL.
func (r *Reader) nstring() (string, bool) {
	switch r.peek() {
	case '"', '{':
		return r.str(), true
	}
	if w := r.upperAtom("NIL or a string"); w != "NIL" {
		r.syntax("Expected NIL or a string")
	}
	return "", false
}

// number reads a number (RFC 9051's number: 32 bits unsigned).
func (r *Reader) number() uint32 {
	return uint32(r.numberMax(1<<32-1, "a number"))
}

// number64 reads a mod-sequence value or a 63-bit number.
func (r *Reader) number64() uint64 {
	return r.numberMax(1<<63-1, "a number")
}

// nzNumber reads a non-zero number.
func (r *Reader) nzNumber() uint32 {
	n := r.number()
	if n == 0 {
		r.syntax("Expected a non-zero number")
	}
	return n
}

func (r *Reader) numberMax(limit uint64, what string) uint64 {
	n, over := r.digits(limit, what)
	if over {
		r.syntax("Number too large")
	}
	return n
}

// digits reads a number of at most limit; over reports a larger one,
// read to its end.
func (r *Reader) digits(limit uint64, what string) (n uint64, over bool) {
	count := 0
	for {
		c := r.peek()
		if c < '0' || c > '9' {
			break
		}
		r.take()
		count++
		if !over {
			n = n*10 + uint64(c-'0')
			over = n > limit || count > 19
		}
	}
	if count == 0 {
		r.syntax("Expected %s", what)
	}
	return n, over
}

// mailbox reads a mailbox name and decodes it: UTF-8 after UTF8=ACCEPT,
// modified UTF-7 before. INBOX is INBOX in any case.
func (r *Reader) mailbox() string {
	return r.decodeMailbox(r.astring("a mailbox name"))
}

// decodeMailbox decodes a mailbox argument as the session reads names.
// A name that does not decode is still a well-formed argument (an
// astring), so the command is not BAD (RFC 9051 section 7.1.3: BAD is
// for a protocol-level error): it is returned marked (see Undecodable),
// a name no mailbox has and the store refuses, and the command answers
// NO, or for a LIST pattern matches nothing.
func (r *Reader) decodeMailbox(raw string) string {
	if strings.EqualFold(raw, "INBOX") {
		return "INBOX"
	}
	if strings.IndexByte(raw, 0) >= 0 {
		// NUL is in no string's syntax (RFC 9051 section 9: CHAR8).
		r.fail(imap.ResponseCodeClientBug, "Mailbox name holds NUL")
	}
	if r.UTF8 {
		if !validName(raw) {
			return undecodableMark + raw
		}
		return raw
	}
	name, err := DecodeMUTF7(raw)
	if err != nil {
		return undecodableMark + raw
	}
	return name
}

// undecodableMark starts a mailbox argument that did not decode: NUL,
// which no decoded name holds and the store refuses in a name.
const undecodableMark = "\x00"

// UndecodableText is the text of the NO answering a mailbox name that
// is Undecodable.
const UndecodableText = "Invalid mailbox name: not valid modified UTF-7 (UTF-8 once enabled)"

// appendMailbox reads APPEND's (or REPLACE's) mailbox. One that does not
// decode refuses the command there, NO [CANNOT], so that the message is
// not asked for (no continuation for a synchronizing literal) and is
// skipped as a refused command's literals are.
func (r *Reader) appendMailbox() string {
	name := r.mailbox()
	if Undecodable(name) {
		panic(&Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: UndecodableText})
	}
	return name
}

// Undecodable reports whether a mailbox argument was not valid modified
// UTF-7 (or, after ENABLE UTF8=ACCEPT, UTF-8).
func Undecodable(name string) bool {
	return strings.HasPrefix(name, undecodableMark)
}

// listMailbox reads a LIST pattern: list-mailbox, with wildcards.
func (r *Reader) listMailbox() string {
	var raw string
	switch r.peek() {
	case '"', '{':
		raw = r.str()
	default:
		raw = r.readWhile(isListChar, "a mailbox pattern")
	}
	if raw == "" {
		return ""
	}
	return r.decodeMailbox(raw)
}

// list reads a parenthesized list, calling item for each element; extra
// spaces between elements and inside the parentheses are taken, as
// Dovecot takes them ("( Project_X)" from its own client).
func (r *Reader) list(item func()) {
	r.expect('(', "a list")
	n := 0
	for {
		spaced := false
		for r.peek() == ' ' {
			r.take()
			spaced = true
		}
		if r.maybe(')') {
			return
		}
		if n > 0 && !spaced {
			r.syntax("Expected a space in a list")
		}
		if n++; n > r.Limits.MaxSetRanges {
			r.fail(imap.ResponseCodeLimit, "Too many items in a list")
		}
		item()
	}
}

// flag reads a flag: a keyword atom or "\" and an atom. System flags
// come back in their canonical case.
func (r *Reader) flag() imap.Flag {
	if r.maybe('\\') {
		name := r.atom("a flag name")
		for _, f := range []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged,
			imap.FlagDeleted, imap.FlagDraft, "\\Recent"} {
			if strings.EqualFold(string(f[1:]), name) {
				return f
			}
		}
		return imap.Flag("\\" + name)
	}
	return imap.Flag(r.atom("a flag"))
}

// flagList reads "(" [flag *(SP flag)] ")".
func (r *Reader) flagList() []imap.Flag {
	flags := []imap.Flag{}
	r.list(func() { flags = append(flags, r.flag()) })
	return flags
}

var months = [...]string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}

// date reads a SEARCH date, d-Mon-yyyy, quoted or not.
func (r *Reader) date() time.Time {
	q := r.maybe('"')
	var b []byte
	for {
		c := r.peek()
		if !(c == '-' || c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z') {
			break
		}
		b = append(b, r.take())
		if len(b) > 11 {
			break
		}
	}
	if q {
		r.expect('"', "the end of a date")
	}
	t, ok := parseDate(string(b))
	if !ok {
		r.fail(imap.ResponseCodeClientBug, "SEARCH date is not d-Mon-yyyy")
	}
	return t
}

// parseDate parses date-text: 1*2DIGIT "-" date-month "-" 4DIGIT.
func parseDate(s string) (time.Time, bool) {
	d1, rest, ok := strings.Cut(s, "-")
	if !ok || len(d1) < 1 || len(d1) > 2 {
		return time.Time{}, false
	}
	mon, year, ok := strings.Cut(rest, "-")
	if !ok || len(year) != 4 || len(mon) != 3 {
		return time.Time{}, false
	}
	day, ok1 := digits(d1)
	y, ok2 := digits(year)
	m := 0
	for i, name := range months {
		if strings.EqualFold(name, mon) {
			m = i + 1
		}
	}
	if !ok1 || !ok2 || m == 0 || day < 1 || day > 31 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day {
		return time.Time{}, false // 31-Feb
	}
	return t, true
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, s != ""
}

// dateTime reads APPEND's date-time: "dd-Mon-yyyy hh:mm:ss +zzzz", the
// day space-padded or not.
func (r *Reader) dateTime() time.Time {
	s := r.quoted()
	for _, layout := range []string{"_2-Jan-2006 15:04:05 -0700", "2-Jan-2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	// Month names in any case.
	if len(s) >= 6 {
		if i := strings.IndexByte(s, '-'); i > 0 && i+4 <= len(s) {
			fixed := s[:i+1] + strings.ToUpper(s[i+1:i+2]) + strings.ToLower(s[i+2:i+4]) + s[i+4:]
			for _, layout := range []string{"_2-Jan-2006 15:04:05 -0700", "2-Jan-2006 15:04:05 -0700"} {
				if t, err := time.Parse(layout, fixed); err == nil {
					return t
				}
			}
		}
	}
	r.syntax("Invalid date-time")
	return time.Time{}
}

// seqSet reads a sequence set, or "$" (RFC 5182, the saved search
// result) as imap.SearchRes whatever uid says: the saved result is a set
// of UIDs. uid selects the type of other sets.
func (r *Reader) seqSet(uid bool) imap.NumSet {
	if r.maybe('$') {
		return imap.SearchRes()
	}
	var seq imap.SeqSet
	var uids imap.UIDSet
	n := 0
	for {
		if n++; n > r.Limits.MaxSetRanges {
			r.fail(imap.ResponseCodeLimit, "Too many ranges in a sequence set")
		}
		start := r.seqNumber()
		stop := start
		if r.maybe(':') {
			stop = r.seqNumber()
		}
		if uid {
			uids = append(uids, imap.UIDRange{Start: imap.UID(start), Stop: imap.UID(stop)})
		} else {
			seq = append(seq, imap.SeqRange{Start: start, Stop: stop})
		}
		if !r.maybe(',') {
			break
		}
	}
	if uid {
		return uids
	}
	return seq
}

// seqNumber reads nz-number or "*" (as 0, go-imap's "*").
func (r *Reader) seqNumber() uint32 {
	if r.maybe('*') {
		return 0
	}
	return r.nzNumber()
}

package imap

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// badMailboxArg reports whether a command's first line (its tag, name
// and arguments up to the end of the line) holds a mailbox name, in an
// atom or a quoted string, that imapserver's decoder will refuse as
// modified UTF-7: a base64 run without its "-", printable ASCII or a
// lone surrogate encoded, two runs in a row, or a control character.
// imapserver (go-imap v2.0.0-beta.8, internal/imapwire
// Decoder.ExpectMailbox and imapserver/list.go readListMailbox) answers
// those NO [SERVERBUG], before the session is called; a reader in front
// of it can answer BAD instead (errBadMailboxArg's text). Names sent as
// literals are not seen here and pass: the guard gathers such commands
// and checks them written on one line (inlineLiterals).
func badMailboxArg(line []byte) bool {
	a := argScanner{s: strings.TrimRight(string(line), "\r\n")}
	a.word() // tag
	cmd := strings.ToUpper(a.word())
	if cmd == "UID" {
		cmd = strings.ToUpper(a.word())
	}
	switch cmd {
	case "CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "STATUS", "APPEND", "SELECT", "EXAMINE":
		return a.badName()
	case "RENAME":
		return a.badName() || a.badName()
	case "COPY", "MOVE":
		a.word() // the sequence set
		return a.badName()
	case "LIST", "LSUB":
		if cmd == "LIST" && a.peek() == '(' {
			a.skipList() // selection options
		}
		if a.badName() {
			return true
		}
		if a.peek() != '(' {
			return a.badPattern()
		}
		a.pos++
		for a.pos < len(a.s) && a.s[a.pos] != ')' {
			if a.badPattern() {
				return true
			}
		}
	}
	return false
}

// errBadMailboxArgText is the text to answer badMailboxArg's lines with,
// as "tag BAD [CLIENTBUG] " + errBadMailboxArgText.
const errBadMailboxArgText = "Mailbox name is not valid modified UTF-7"

// argScanner reads a command line's arguments, as far as they can be
// read without literals.
type argScanner struct {
	s   string
	pos int
	lit bool // a literal was met: nothing more can be read
}

func (a *argScanner) space() {
	if a.pos < len(a.s) && a.s[a.pos] == ' ' {
		a.pos++
	}
}

func (a *argScanner) peek() byte {
	a.space()
	if a.pos < len(a.s) {
		return a.s[a.pos]
	}
	return 0
}

// word reads up to the next space.
func (a *argScanner) word() string {
	a.space()
	start := a.pos
	for a.pos < len(a.s) && a.s[a.pos] != ' ' {
		a.pos++
	}
	return a.s[start:a.pos]
}

// astring reads an atom (ending at a space, or with inList at ')' too)
// or a quoted string; ok is false for a literal or nothing.
func (a *argScanner) astring(inList bool) (v string, ok bool) {
	switch c := a.peek(); {
	case a.lit || c == 0:
		return "", false
	case c == '{':
		a.lit = true
		return "", false
	case c == '"':
		var b strings.Builder
		for a.pos++; a.pos < len(a.s); a.pos++ {
			c := a.s[a.pos]
			if c == '"' {
				a.pos++
				return b.String(), true
			}
			if c == '\\' && a.pos+1 < len(a.s) {
				a.pos++
				c = a.s[a.pos]
			}
			b.WriteByte(c)
		}
		return "", false // unterminated: imapserver's syntax error
	}
	start := a.pos
	for a.pos < len(a.s) && a.s[a.pos] != ' ' && !(inList && a.s[a.pos] == ')') {
		a.pos++
	}
	return a.s[start:a.pos], true
}

func (a *argScanner) skipList() {
	depth := 0
	for ; a.pos < len(a.s); a.pos++ {
		switch a.s[a.pos] {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				a.pos++
				return
			}
		}
	}
}

// badName reads a mailbox argument: INBOX in any case is taken as it is.
func (a *argScanner) badName() bool {
	v, ok := a.astring(false)
	return ok && !strings.EqualFold(v, "INBOX") && !validMUTF7(v)
}

// badPattern reads a LIST pattern.
func (a *argScanner) badPattern() bool {
	v, ok := a.astring(true)
	if !ok {
		a.pos = len(a.s)
		return false
	}
	return !validMUTF7(v)
}

// mutf7Base64 is modified UTF-7's base64, with padding added back
// before decoding, as imapserver's decoder does.
var mutf7Base64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")

// validMUTF7 reports whether imapserver's decoder takes s as a mailbox
// name: raw UTF-8 is taken (IMAP4rev2), ASCII controls are not, and
// each "&...-" run must decode to UTF-16 that is neither printable
// ASCII nor a broken surrogate pair, and not follow another run.
func validMUTF7(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c != '&' {
			ascii = true
			continue
		}
		start := i + 1
		for i++; i < len(s) && s[i] != '-'; i++ {
		}
		switch {
		case i == len(s):
			return false
		case i == start: // "&-"
			ascii = true
		case !ascii || !validShift(s[start:i]):
			return false
		default:
			ascii = false
		}
	}
	return true
}

func validShift(b64 string) bool {
	if strings.HasSuffix(b64, "=") || strings.ContainsAny(b64, "\r\n") {
		return false
	}
	if n := len(b64) % 4; n != 0 {
		b64 += "===="[n:]
	}
	b, err := mutf7Base64.DecodeString(b64)
	if err != nil || len(b)%2 != 0 || len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i += 2 {
		r := rune(b[i])<<8 | rune(b[i+1])
		if utf16.IsSurrogate(r) {
			if i += 2; i == len(b) {
				return false
			}
			if utf16.DecodeRune(r, rune(b[i])<<8|rune(b[i+1])) == utf8.RuneError {
				return false
			}
		} else if r >= 0x20 && r <= 0x7e {
			return false
		}
	}
	return true
}

package imap

import (
	"bytes"
	"strconv"
	"strings"
)

// convertSearchCharset rewrites a whole SEARCH or UID SEARCH command
// whose CHARSET is neither UTF-8 nor US-ASCII into the same command in
// UTF-8, for a reader in front of imapserver, which refuses every other
// CHARSET (imapserver/search.go) before the session is called. cmd is
// the command as the client sent it: its lines, each literal's bytes
// after its header, the final CRLF. Every string (quoted or literal)
// after the CHARSET is converted (in SEARCH they are search strings,
// and field names and dates, which are ASCII and stay as they are),
// and written as a quoted string, or as a non-synchronizing literal
// when it holds CR, LF or NUL. Other commands, and SEARCH in UTF-8 or
// US-ASCII, come back unchanged.
//
// An unknown charset gives errBadCharset (NO [BADCHARSET (...)], the
// list of charsets searchEncoding takes); a string not valid in its
// charset errSearchNotUTF8 (BAD).
func convertSearchCharset(cmd []byte) ([]byte, error) {
	p := &cmdReader{b: cmd}
	p.atom() // tag
	name := p.atom()
	if strings.EqualFold(name, "UID") {
		name = p.atom()
	}
	if !strings.EqualFold(name, "SEARCH") {
		return cmd, nil
	}
	word := p.atom()
	if strings.EqualFold(word, "RETURN") {
		p.skipList()
		word = p.atom()
	}
	if !strings.EqualFold(word, "CHARSET") {
		return cmd, nil
	}
	p.space()
	start := p.i
	charset, ok := p.astring()
	if !ok || (p.i < len(cmd) && cmd[p.i] != ' ' && cmd[p.i] != '\r') {
		return cmd, nil // imapserver's syntax error
	}
	enc, err := searchEncoding(charset)
	if err != nil {
		return nil, err
	}
	if enc == nil {
		return cmd, nil
	}
	out := make([]byte, 0, len(cmd)+len(cmd)/2)
	out = append(out, cmd[:start]...)
	out = append(out, "UTF-8"...)
	last := p.i
	for p.i < len(cmd) {
		switch cmd[p.i] {
		case '"', '{':
			at := p.i
			s, ok := p.astring()
			if !ok {
				// Not a string after all: copy on.
				p.i = at + 1
				continue
			}
			u, err := decodeSearchString(enc, s)
			if err != nil {
				return nil, err
			}
			out = append(out, cmd[last:at]...)
			out = appendIMAPString(out, u)
			last = p.i
		default:
			p.i++
		}
	}
	return append(out, cmd[last:]...), nil
}

// appendIMAPString writes s as a quoted string, or as a
// non-synchronizing literal when a quoted string cannot hold it.
func appendIMAPString(out []byte, s string) []byte {
	if strings.ContainsAny(s, "\r\n\x00") {
		out = append(out, '{')
		out = strconv.AppendInt(out, int64(len(s)), 10)
		out = append(out, "+}\r\n"...)
		return append(out, s...)
	}
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return append(out, '"')
}

// cmdReader reads a command's tokens, literals included.
type cmdReader struct {
	b []byte
	i int
}

func (p *cmdReader) space() {
	for p.i < len(p.b) && p.b[p.i] == ' ' {
		p.i++
	}
}

// atom reads up to a space, a parenthesis or the end of the line.
func (p *cmdReader) atom() string {
	p.space()
	start := p.i
	for p.i < len(p.b) && !bytes.ContainsRune([]byte(" ()\r\n"), rune(p.b[p.i])) {
		p.i++
	}
	return string(p.b[start:p.i])
}

func (p *cmdReader) skipList() {
	p.space()
	depth := 0
	for ; p.i < len(p.b); p.i++ {
		switch p.b[p.i] {
		case '(':
			depth++
		case ')':
			if depth--; depth <= 0 {
				p.i++
				return
			}
		}
	}
}

// astring reads a quoted string, a literal ("{n}" or "{n+}", CRLF, n
// bytes) or an atom.
func (p *cmdReader) astring() (string, bool) {
	if p.i >= len(p.b) {
		return "", false
	}
	switch p.b[p.i] {
	case '"':
		var s []byte
		for i := p.i + 1; i < len(p.b); i++ {
			c := p.b[i]
			switch {
			case c == '"':
				p.i = i + 1
				return string(s), true
			case c == '\\' && i+1 < len(p.b):
				i++
				c = p.b[i]
			case c == '\r' || c == '\n':
				return "", false
			}
			s = append(s, c)
		}
		return "", false
	case '{':
		j := p.i + 1
		for j < len(p.b) && '0' <= p.b[j] && p.b[j] <= '9' {
			j++
		}
		n, err := strconv.ParseInt(string(p.b[p.i+1:j]), 10, 64)
		if err != nil {
			return "", false
		}
		if j < len(p.b) && p.b[j] == '+' {
			j++
		}
		if !bytes.HasPrefix(p.b[j:], []byte("}\r\n")) || n > int64(len(p.b)-j-3) {
			return "", false
		}
		j += 3
		p.i = j + int(n)
		return string(p.b[j:p.i]), true
	}
	s := p.atom()
	return s, s != ""
}

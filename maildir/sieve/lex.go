package sieve

import (
	"fmt"
	"strconv"
	"strings"
)

// Pos is a place in a script, counted from 1.
type Pos struct{ Line, Col int }

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// Error is a syntax, validation or run-time error of a script, with the
// place it was found (zero Pos for errors of the run as a whole).
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string {
	if e.Pos.Line == 0 {
		return "sieve: " + e.Msg
	}
	return "sieve: " + e.Pos.String() + ": " + e.Msg
}

func errAt(p Pos, format string, a ...any) *Error {
	return &Error{Pos: p, Msg: fmt.Sprintf(format, a...)}
}

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tTag
	tNumber
	tString
	tPunct
)

type token struct {
	kind tokKind
	pos  Pos
	text string // identifier, tag (without ':'), string value, punctuation
	num  int64
}

type lexer struct {
	src       string
	off       int
	line, col int
}

func (l *lexer) pos() Pos { return Pos{l.line, l.col} }

func (l *lexer) advance(n int) {
	for i := 0; i < n && l.off < len(l.src); i++ {
		if l.src[l.off] == '\n' {
			l.line++
			l.col = 1
		} else {
			l.col++
		}
		l.off++
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// skip passes white space and comments.
func (l *lexer) skip() error {
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			l.advance(1)
		case c == '#':
			for l.off < len(l.src) && l.src[l.off] != '\n' {
				l.advance(1)
			}
		case c == '/' && strings.HasPrefix(l.src[l.off:], "/*"):
			p := l.pos()
			end := strings.Index(l.src[l.off+2:], "*/")
			if end < 0 {
				return errAt(p, "unterminated comment")
			}
			l.advance(end + 4)
		default:
			return nil
		}
	}
	return nil
}

func (l *lexer) next() (token, error) {
	if err := l.skip(); err != nil {
		return token{}, err
	}
	p := l.pos()
	if l.off >= len(l.src) {
		return token{kind: tEOF, pos: p}, nil
	}
	c := l.src[l.off]
	switch {
	case strings.IndexByte(";,()[]{}", c) >= 0:
		l.advance(1)
		return token{kind: tPunct, pos: p, text: string(c)}, nil
	case c == ':':
		l.advance(1)
		start := l.off
		if l.off >= len(l.src) || !isIdentStart(l.src[l.off]) {
			return token{}, errAt(p, "':' must begin a tag")
		}
		for l.off < len(l.src) && isIdentChar(l.src[l.off]) {
			l.advance(1)
		}
		return token{kind: tTag, pos: p, text: strings.ToLower(l.src[start:l.off])}, nil
	case c >= '0' && c <= '9':
		start := l.off
		for l.off < len(l.src) && l.src[l.off] >= '0' && l.src[l.off] <= '9' {
			l.advance(1)
		}
		n, err := strconv.ParseInt(l.src[start:l.off], 10, 64)
		if err != nil || n > 1<<40 {
			return token{}, errAt(p, "number too large")
		}
		if l.off < len(l.src) {
			mul := int64(1)
			switch l.src[l.off] {
			case 'K', 'k':
				mul = 1 << 10
			case 'M', 'm':
				mul = 1 << 20
			case 'G', 'g':
				mul = 1 << 30
			}
			if mul != 1 {
				l.advance(1)
				n *= mul
			}
		}
		if l.off < len(l.src) && isIdentChar(l.src[l.off]) {
			return token{}, errAt(p, "bad number")
		}
		return token{kind: tNumber, pos: p, num: n}, nil
	case c == '"':
		l.advance(1)
		var b strings.Builder
		for {
			if l.off >= len(l.src) {
				return token{}, errAt(p, "unterminated string")
			}
			c := l.src[l.off]
			if c == '"' {
				l.advance(1)
				return token{kind: tString, pos: p, text: b.String()}, nil
			}
			if c == '\\' && l.off+1 < len(l.src) {
				l.advance(1)
				c = l.src[l.off]
			}
			b.WriteByte(c)
			l.advance(1)
		}
	case isIdentStart(c):
		start := l.off
		for l.off < len(l.src) && isIdentChar(l.src[l.off]) {
			l.advance(1)
		}
		word := l.src[start:l.off]
		if strings.EqualFold(word, "text") && l.off < len(l.src) && l.src[l.off] == ':' {
			l.advance(1)
			return l.multiline(p)
		}
		return token{kind: tIdent, pos: p, text: strings.ToLower(word)}, nil
	}
	return token{}, errAt(p, "unexpected character %q", c)
}

// multiline reads the rest of a "text:" string (RFC 5228 section 2.4.2).
func (l *lexer) multiline(p Pos) (token, error) {
	for l.off < len(l.src) && (l.src[l.off] == ' ' || l.src[l.off] == '\t') {
		l.advance(1)
	}
	if l.off < len(l.src) && l.src[l.off] == '#' {
		for l.off < len(l.src) && l.src[l.off] != '\n' {
			l.advance(1)
		}
	}
	if l.off < len(l.src) && l.src[l.off] == '\r' {
		l.advance(1)
	}
	if l.off >= len(l.src) || l.src[l.off] != '\n' {
		return token{}, errAt(p, "text: must end its line")
	}
	l.advance(1)
	var b strings.Builder
	for {
		if l.off >= len(l.src) {
			return token{}, errAt(p, "unterminated multi-line string")
		}
		end := strings.IndexByte(l.src[l.off:], '\n')
		var line string
		if end < 0 {
			line = l.src[l.off:]
			end = len(line) - 1
		} else {
			line = l.src[l.off : l.off+end+1]
		}
		l.advance(end + 1)
		if strings.TrimRight(line, "\r\n") == "." {
			return token{kind: tString, pos: p, text: b.String()}, nil
		}
		if strings.HasPrefix(line, "..") {
			line = line[1:]
		}
		trimmed := strings.TrimRight(line, "\r\n")
		// Lines are kept with CRLF endings, as they are in mail.
		b.WriteString(trimmed)
		if strings.HasSuffix(line, "\n") {
			b.WriteString("\r\n")
		}
	}
}

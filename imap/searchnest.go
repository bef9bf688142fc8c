package imap

import "time"

// searchDateLayout is IMAP's date, as imapserver reads SEARCH's.
const searchDateLayout = "2-Jan-2006"

// searchNest follows how deeply a SEARCH command's keys nest while the
// command's text is read, for a reader in front of imapserver.
// imapserver's SEARCH parser (imapserver/search.go, readSearchKey)
// recurses once per NOT, OR and parenthesis with no limit of its own
// but the command's 50 KiB: about 12,000 levels, which grow the
// connection's goroutine stack to some 32 MiB, and this before the
// command's state is checked, so before login too. A reader that feeds
// a SEARCH command's lines (after the command name, without literal
// bytes) to feed can answer it BAD [LIMIT] once feed reports false,
// before imapserver parses it: the same answer Search gives past
// maxSearchNesting levels of NOT and OR.
//
// Each NOT, OR and "(" counts as one level, as it is one level of
// imapserver's recursion; a key ends the levels it completes (one
// operand of NOT, two of OR, up to ")" for a parenthesis). Arguments
// are recognised by the keys that take them, so that "SUBJECT OR" is a
// key and its string, not an OR. Quoted strings may span feeds.
type searchNest struct {
	// stack holds, per open level, the operands still expected: 1 or
	// 2 for NOT and OR, parenLevel for a parenthesis.
	stack [maxSearchNesting]int8
	n     int  // open levels
	args  int  // arguments the current key still takes
	skip  int  // depth in a skipped list: RETURN's options, or an argument
	arg   bool // the skipped list is an argument: its end ends a key
	ret   bool // RETURN seen: its option list comes next
	over  bool
	// unknown: a word where a key goes is neither one of imapserver's
	// keys (those of RFC 3501 and RFC 9051) nor a sequence set.
	unknown bool
	date    bool // the argument being read is a date
	badDate bool // a date given as an atom is not d-Mon-yyyy

	word  [12]byte // the word being read (its start; longer words are no keyword)
	wlen  int
	quote bool // in a quoted string
	esc   bool // after a backslash in a quoted string
}

const parenLevel = -1

// feed reads more of the command's text and reports whether its keys
// still nest no deeper than maxSearchNesting.
func (s *searchNest) feed(b []byte) bool {
	for _, c := range b {
		if s.over {
			return false
		}
		if s.quote {
			switch {
			case s.esc:
				s.esc = false
			case c == '\\':
				s.esc = true
			case c == '"':
				s.quote = false
				s.token(nil)
			}
			continue
		}
		switch c {
		case ' ', '\r', '\n', '(', ')', '"':
			if s.wlen > 0 {
				s.token(s.word[:min(s.wlen, len(s.word))])
				s.wlen = 0
			}
			switch c {
			case '(':
				s.open()
			case ')':
				s.close()
			case '"':
				s.quote = true
			}
		default:
			if s.wlen < len(s.word) {
				s.word[s.wlen] = upper(c)
			}
			s.wlen++
		}
	}
	return !s.over
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// token handles a word (nil for a quoted string).
func (s *searchNest) token(w []byte) {
	if s.skip > 0 {
		return
	}
	if s.args > 0 {
		if s.date {
			s.date = false
			if w != nil {
				if _, err := time.Parse(searchDateLayout, string(w)); err != nil {
					s.badDate = true
				}
			}
		}
		s.args--
		if s.args == 0 {
			s.done()
		}
		return
	}
	switch string(w) {
	case "NOT":
		s.push(1)
	case "FUZZY":
		s.unknown = true
		s.push(1)
	case "OR":
		s.push(2)
	case "RETURN":
		s.ret = true
	case "HEADER":
		s.args = 2
	case "BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO", "KEYWORD", "UNKEYWORD",
		"LARGER", "SMALLER", "UID", "CHARSET":
		s.args = 1
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		s.date = true
		s.args = 1
	case "OLDER", "YOUNGER", "FILTER", "MODSEQ":
		// Extensions imapserver does not read.
		s.unknown = true
		s.args = 1
	case "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "RECENT", "SEEN",
		"UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN", "NEW", "OLD", "$":
		s.done()
	default:
		if w != nil && !isSeqSetWord(w) {
			s.unknown = true
		}
		s.done()
	}
}

func (s *searchNest) push(operands int8) {
	if s.n == len(s.stack) {
		s.over = true
		return
	}
	s.stack[s.n] = operands
	s.n++
}

func (s *searchNest) open() {
	switch {
	case s.skip > 0 || s.ret:
		s.ret = false
		s.skip++
	case s.args > 0:
		// A list where an argument goes: not a key, nothing nests.
		s.args--
		s.skip = 1
		s.arg = true
	default:
		s.push(parenLevel)
	}
}

func (s *searchNest) close() {
	if s.skip > 0 {
		if s.skip--; s.skip == 0 && s.arg {
			s.arg = false
			if s.args == 0 {
				s.done()
			}
		}
		return
	}
	// Levels left open by a malformed key end with the parenthesis.
	for s.n > 0 && s.stack[s.n-1] != parenLevel {
		s.n--
	}
	if s.n > 0 {
		s.n--
		s.done()
	}
}

// done ends a key: the levels waiting for their last operand end too.
func (s *searchNest) done() {
	for s.n > 0 && s.stack[s.n-1] != parenLevel {
		if s.stack[s.n-1]--; s.stack[s.n-1] > 0 {
			return
		}
		s.n--
	}
}

// isSeqSetWord reports whether w (a word's first bytes) can start a
// sequence set.
func isSeqSetWord(w []byte) bool {
	for _, c := range w {
		if !('0' <= c && c <= '9') && c != ':' && c != '*' && c != ',' {
			return false
		}
	}
	return len(w) > 0
}

package imapwire

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/emersion/go-imap/v2"
)

// Limits bound what one command may hold. Zero values take the defaults
// noted.
type Limits struct {
	// MaxLine bounds a command's bytes outside its literals, over all
	// its lines (default 50 KiB).
	MaxLine int
	// MaxLiteral bounds one literal other than APPEND's message (default
	// 4096, LITERAL-'s limit on non-synchronizing literals).
	MaxLiteral int64
	// MaxLiterals bounds a command's literals in total, APPEND's
	// messages aside (default 64 KiB).
	MaxLiterals int64
	// AppendLimit bounds one APPEND (or REPLACE) message (default 50 MiB);
	// a CATENATE message's parts count against it together.
	AppendLimit int64
	// MaxCatenateParts bounds the parts of one CATENATE message (RFC
	// 4469; default 256).
	MaxCatenateParts int
	// MaxAppendMessages bounds the messages of one MULTIAPPEND (RFC
	// 3502; default 1,000; BAD [LIMIT]), and MaxAppendTotal their bytes
	// together, CATENATE parts included (default 10 times AppendLimit;
	// as a message over AppendLimit is refused): the command is refused
	// before the message or literal is asked for, and the server keeps
	// none of its messages.
	MaxAppendMessages int
	MaxAppendTotal    int64
	// MaxSearchDepth bounds the nesting of SEARCH keys: NOT, OR and
	// parentheses (default 64).
	MaxSearchDepth int
	// MaxSetRanges bounds the ranges of one sequence set and the items
	// of one list (default 10,000).
	MaxSetRanges int
	// LiteralPlus takes non-synchronizing literals up to the limits
	// above (RFC 7888 LITERAL+); otherwise those over 4096 bytes end the
	// connection (LITERAL-).
	LiteralPlus bool
}

// literalMinus is RFC 7888's limit on non-synchronizing literals under
// LITERAL-.
const literalMinus = 4096

func (l *Limits) setDefaults() {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxLine <= 0 {
		l.MaxLine = 50 << 10
	}
	def(&l.MaxLiteral, literalMinus)
	def(&l.MaxLiterals, 64<<10)
	def(&l.AppendLimit, 50<<20)
	def(&l.MaxAppendTotal, 10*l.AppendLimit)
	if l.MaxAppendMessages <= 0 {
		l.MaxAppendMessages = 1000
	}
	if l.MaxSearchDepth <= 0 {
		l.MaxSearchDepth = 64
	}
	if l.MaxCatenateParts <= 0 {
		l.MaxCatenateParts = 256
	}
	if l.MaxSetRanges <= 0 {
		l.MaxSetRanges = 10000
	}
}

// Error is a command the Reader refuses: the server answers it with a
// tagged (or, without a tag, untagged) response of Type and Code, and
// closes the connection after a BYE when Close is set.
type Error struct {
	Tag   string
	Type  imap.StatusResponseType
	Code  imap.ResponseCode
	Text  string
	Close bool
	// Save says the command was a SEARCH with RETURN (SAVE): its
	// failure empties the saved result (RFC 5182 section 2.1).
	Save bool
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s [%s] %s", e.Type, e.Code, e.Text)
	}
	return fmt.Sprintf("%s %s", e.Type, e.Text)
}

// ErrIdleNotDone is returned by ReadIdleDone for a line other than DONE.
var ErrIdleNotDone = errors.New("imapwire: IDLE ended by a line other than DONE")

// ErrRefused is returned by every read after an *Error with Close set:
// what the client sent after the refused line or literal cannot be told
// apart from a command, so none of it is read.
var ErrRefused = errors.New("imapwire: input refused, the connection must close")

// ioError carries a read error through the parser's panics.
type ioError struct{ err error }

// Reader reads commands from a client.
type Reader struct {
	br *bufio.Reader
	// Continue sends a continuation request, and flushes it, for a
	// synchronizing literal the Reader is about to read.
	Continue func() error
	// Limits bound each command; they may be changed between commands.
	Limits Limits
	// UTF8 says mailbox names are UTF-8 (after ENABLE UTF8=ACCEPT or
	// IMAP4rev2) rather than modified UTF-7.
	UTF8 bool
	// Check, when set, is asked about each command as soon as its name
	// is read (after UID): an *Error it returns refuses the command
	// before its arguments, so that none of its literals is invited with
	// a continuation request (a command the connection's state does not
	// allow, a password before TLS).
	Check func(name string, uid bool) *Error

	refused bool // an *Error with Close was returned: nothing more is read

	tag   string
	line  int   // bytes outside literals read of this command
	lits  int64 // literal bytes of this command, messages aside
	ended bool  // the command's last line is read (or its literal refused)
	save  bool  // the command is a SEARCH with RETURN (SAVE)
	depth int   // SEARCH nesting

	body *io.LimitedReader // the APPEND message or CATENATE part being read
	// catSize and catParts count the CATENATE message being read: its
	// bytes so far (TEXT literals and URL parts) and its parts.
	catSize  int64
	catParts int
	// appendMsgs and appendTotal count the APPEND being read: its
	// messages and their bytes (CATENATE parts included).
	appendMsgs  int
	appendTotal int64
	inLit       bool       // reading a literal's data
	pending     func() any // what next reads: the next message or part
	last        any        // what next read
}

// NewReader returns a Reader of br. cont is Continue.
func NewReader(br *bufio.Reader, cont func() error) *Reader {
	return &Reader{br: br, Continue: cont}
}

// InLiteral reports whether the Reader is reading a literal's data (its
// caller, an APPEND message's reader, included): the connection's read
// deadline is then a data rate's rather than a command line's.
func (r *Reader) InLiteral() bool { return r.inLit }

// literalData reads a literal's data as InLiteral reports it.
type literalData struct {
	r  *Reader
	lr *io.LimitedReader
}

func (d literalData) Read(p []byte) (int, error) {
	d.r.inLit = true
	n, err := d.lr.Read(p)
	d.r.inLit = false
	return n, err
}

// Refused reports whether an *Error with Close was returned: the
// connection must end, nothing more is read.
func (r *Reader) Refused() bool { return r.refused }

// Buffered reports how many bytes are buffered: pipelined input that a
// STARTTLS must discard.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Reset points the Reader at a new stream (after STARTTLS or COMPRESS),
// dropping anything buffered.
func (r *Reader) Reset(rd io.Reader) {
	r.br.Reset(rd)
	r.body, r.pending = nil, nil
}

// fail stops parsing with a BAD response of code and text.
func (r *Reader) fail(code imap.ResponseCode, format string, args ...any) {
	panic(&Error{Type: imap.StatusResponseTypeBad, Code: code, Text: fmt.Sprintf(format, args...)})
}

// syntax stops parsing with BAD for a syntax error.
func (r *Reader) syntax(format string, args ...any) {
	r.fail("", format, args...)
}

// fatal stops parsing and ends the connection: what follows cannot be
// told apart from a command.
func (r *Reader) fatal(code imap.ResponseCode, text string) {
	panic(&Error{Type: imap.StatusResponseTypeBad, Code: code, Text: text, Close: true})
}

// recover turns the parser's panics into errors, skipping the rest of
// the command after a non-fatal one.
func (r *Reader) recover(errp *error) {
	v := recover()
	if v == nil {
		return
	}
	switch e := v.(type) {
	case ioError:
		*errp = e.err
	case *Error:
		if e.Tag == "" {
			e.Tag = r.tag
		}
		e.Save = r.save
		if !e.Close && !r.ended {
			if err := r.skipRest(); err != nil {
				var fe *Error
				if errors.As(err, &fe) {
					e.Close, e.Code, e.Text = true, fe.Code, fe.Text
				} else {
					*errp = err
					return
				}
			}
		}
		r.ended = true
		r.body, r.pending = nil, nil
		r.refused = r.refused || e.Close
		*errp = e
	default:
		panic(v)
	}
}

// peek returns the next byte without reading it.
func (r *Reader) peek() byte {
	b, err := r.br.Peek(1)
	if err != nil {
		panic(ioError{err})
	}
	return b[0]
}

// take reads one byte outside a literal.
func (r *Reader) take() byte {
	c, err := r.br.ReadByte()
	if err != nil {
		panic(ioError{err})
	}
	r.count(1)
	return c
}

// count charges n bytes to the command's line limit.
func (r *Reader) count(n int) {
	r.line += n
	if r.line > r.Limits.MaxLine {
		r.fatal(imap.ResponseCodeTooBig, "Command line too long")
	}
}

// expect reads c or fails.
func (r *Reader) expect(c byte, what string) {
	if got := r.take(); got != c {
		r.syntax("Expected %s", what)
	}
}

// sp reads one space.
func (r *Reader) sp() { r.expect(' ', "a space") }

// spaces reads one or more spaces, where Dovecot takes extra ones.
func (r *Reader) spaces() {
	r.sp()
	for r.peek() == ' ' {
		r.take()
	}
}

// maybe reads c if it is next.
func (r *Reader) maybe(c byte) bool {
	if r.peek() == c {
		r.take()
		return true
	}
	return false
}

// atEOL reports whether the command line ends here.
func (r *Reader) atEOL() bool {
	c := r.peek()
	return c == '\r' || c == '\n'
}

// eol reads the end of the command: CRLF, or a bare LF as Dovecot takes
// it.
func (r *Reader) eol() {
	c := r.take()
	if c == '\r' {
		c = r.take()
	}
	if c != '\n' {
		r.syntax("Expected the end of the command")
	}
	r.ended = true
}

// skipRest reads the rest of a refused command: to the end of its line,
// and on through its non-synchronizing literals. A synchronizing literal
// at a line's end ends the command: its continuation is never sent.
func (r *Reader) skipRest() error {
	var tail [24]byte
	n := 0
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			return err
		}
		r.line++
		if r.line > r.Limits.MaxLine {
			return &Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeTooBig, Text: "Command line too long", Close: true}
		}
		if c != '\n' {
			if n == len(tail) {
				copy(tail[:], tail[1:])
				n--
			}
			tail[n] = c
			n++
			continue
		}
		size, nonSync, ok := literalAtEnd(tail[:n])
		n = 0
		if !ok {
			return nil
		}
		if !nonSync {
			return nil
		}
		limit := max(r.Limits.MaxLiteral, int64(literalMinus))
		if r.Limits.LiteralPlus {
			limit = max(limit, r.Limits.AppendLimit)
		}
		if size > limit {
			return &Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeTooBig, Text: "Literal too large", Close: true}
		}
		if _, err := io.CopyN(io.Discard, r.br, size); err != nil {
			return err
		}
	}
}

// literalAtEnd finds a literal's header, "{n}" or "{n+}" (or "~{n}"),
// at the end of a line (its CR included or not).
func literalAtEnd(b []byte) (size int64, nonSync, ok bool) {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	if len(b) < 3 || b[len(b)-1] != '}' {
		return 0, false, false
	}
	b = b[:len(b)-1]
	if c := b[len(b)-1]; c == '+' || c == '-' {
		nonSync = true
		b = b[:len(b)-1]
	}
	i := len(b)
	for i > 0 && b[i-1] >= '0' && b[i-1] <= '9' {
		i--
	}
	if i == 0 || i == len(b) || b[i-1] != '{' || len(b)-i > 10 {
		return 0, false, false
	}
	for _, c := range b[i:] {
		size = size*10 + int64(c-'0')
	}
	return size, nonSync, true
}

// literalKind says what a literal holds, for its limits.
type literalKind int

const (
	litString  literalKind = iota // a string argument
	litMessage                    // APPEND's or REPLACE's message
	litPart                       // a CATENATE TEXT part: the message's size so far counts
)

// literalHeader reads "{n}" or "{n+}" and the line's end, after an
// optional "~" the caller has read, and applies the limits: a
// synchronizing literal over them is answered NO [TOOBIG] before its
// continuation request; a non-synchronizing one ends the connection. It
// sends the continuation request for a synchronizing literal.
func (r *Reader) literalHeader(kind literalKind) int64 {
	r.expect('{', "a literal")
	// Sizes past 32 bits are refused below, as too large rather than as
	// bad syntax.
	n, huge := r.digits(1<<32-1, "a literal size")
	size := int64(n)
	if huge {
		size = 1 << 32
	}
	nonSync := r.maybe('+')
	if !nonSync && r.peek() == '-' {
		r.take()
		nonSync = true
	}
	r.expect('}', "the end of a literal size")
	c := r.take()
	for c == ' ' {
		c = r.take() // spaces before the line's end, as Dovecot takes them
	}
	if c == '\r' {
		c = r.take()
	}
	if c != '\n' {
		r.syntax("Expected the end of the line after a literal size")
	}
	if size > 1<<32-1 {
		if nonSync {
			r.fatal(imap.ResponseCodeTooBig, "Literal too large")
		}
		r.ended = true
		panic(&Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Literal too large"})
	}
	limit, text := r.Limits.MaxLiteral, "Literal too large"
	total := r.lits + size
	switch kind {
	case litMessage:
		limit, text, total = r.Limits.AppendLimit, "Message too large", 0
	case litPart:
		limit, text, total = r.Limits.AppendLimit-r.catSize, "Message too large", 0
	}
	over := size > limit || total > r.Limits.MaxLiterals
	if kind != litString && r.appendTotal+size > r.Limits.MaxAppendTotal {
		over, text = true, "Messages of one APPEND too large together"
	}
	if nonSync {
		if over || (!r.Limits.LiteralPlus && size > literalMinus) {
			r.fatal(imap.ResponseCodeTooBig, text)
		}
	} else if over {
		r.ended = true
		panic(&Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: text})
	}
	switch kind {
	case litString:
		r.lits += size
	case litPart:
		r.catSize += size
		r.appendTotal += size
	case litMessage:
		r.appendTotal += size
	}
	if !nonSync && r.Continue != nil {
		if err := r.Continue(); err != nil {
			panic(ioError{err})
		}
	}
	return size
}

// literalBytes reads a literal's data whole.
func (r *Reader) literalBytes(size int64) []byte {
	b := make([]byte, size)
	r.inLit = true
	_, err := io.ReadFull(r.br, b)
	r.inLit = false
	if err != nil {
		panic(ioError{err})
	}
	return b
}

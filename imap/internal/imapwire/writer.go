package imapwire

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// maxQuoted is the longest string written quoted; longer ones are
// literals, which clients read without scanning for escapes.
const maxQuoted = 1024

// Writer encodes responses. Its methods write to a bufio.Writer, whose
// first error sticks and is returned by Flush.
type Writer struct {
	bw *bufio.Writer
	// UTF8 writes mailbox names as UTF-8 and lets quoted strings carry
	// UTF-8 (after ENABLE UTF8=ACCEPT or IMAP4rev2); otherwise names are
	// modified UTF-7 and 8-bit strings literals.
	UTF8 bool
}

// NewWriter returns a Writer to bw.
func NewWriter(bw *bufio.Writer) *Writer { return &Writer{bw: bw} }

// Flush writes what is buffered and returns the first write error.
func (w *Writer) Flush() error { return w.bw.Flush() }

// SetBuffer points the Writer at bw: a connection holds a buffer only
// while it answers.
func (w *Writer) SetBuffer(bw *bufio.Writer) { w.bw = bw }

// Status writes a status response: tag ("" for "*"), OK, NO, BAD, BYE
// or PREAUTH, an optional response code (with its arguments, as
// "BADCHARSET (UTF-8)") and text. The text is kept to one line and
// never starts with "[", so that it cannot forge a response code.
func (w *Writer) Status(tag string, typ imap.StatusResponseType, code, text string) {
	if tag == "" {
		tag = "*"
	}
	w.bw.WriteString(tag)
	w.bw.WriteByte(' ')
	w.bw.WriteString(string(typ))
	if code != "" {
		w.bw.WriteString(" [")
		w.bw.WriteString(code)
		w.bw.WriteByte(']')
	}
	if text == "" {
		text = string(typ)
	}
	w.bw.WriteByte(' ')
	w.bw.WriteString(safeText(text))
	w.bw.WriteString("\r\n")
}

// safeText keeps text to printable characters on one line.
func safeText(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			clean = false
			break
		}
	}
	if clean && !strings.HasPrefix(s, "[") && utf8.ValidString(s) {
		return s
	}
	b := []byte(strings.ToValidUTF8(s, "?"))
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	if len(b) > 0 && b[0] == '[' {
		b[0] = '('
	}
	return string(b)
}

// Continue writes a continuation request.
func (w *Writer) Continue(text string) {
	w.bw.WriteString("+ ")
	w.bw.WriteString(safeText(text))
	w.bw.WriteString("\r\n")
}

// Untagged starts an untagged response: "* ".
func (w *Writer) Untagged() { w.bw.WriteString("* ") }

// End ends a response line.
func (w *Writer) End() { w.bw.WriteString("\r\n") }

// SP writes a space.
func (w *Writer) SP() { w.bw.WriteByte(' ') }

// Open and Close write a list's parentheses.
func (w *Writer) Open()  { w.bw.WriteByte('(') }
func (w *Writer) Close() { w.bw.WriteByte(')') }

// Atom writes s as it is: an atom, a keyword or a flag the caller knows
// to be valid.
func (w *Writer) Atom(s string) { w.bw.WriteString(s) }

// Number writes a number.
func (w *Writer) Number(n uint32) { w.Number64(uint64(n)) }

// Number64 writes a 64-bit number (mod-sequences, sizes), formatted in
// the buffer's free space: a SORT or FETCH of a large folder writes one
// number or more per message and allocates nothing for them.
func (w *Writer) Number64(n uint64) { w.bw.Write(strconv.AppendUint(w.bw.AvailableBuffer(), n, 10)) }

// String writes s as a quoted string or, when it cannot be quoted, a
// literal.
func (w *Writer) String(s string) {
	if w.quotable(s) {
		w.quoted(s)
		return
	}
	w.Literal([]byte(s))
}

// AString writes s as an atom when it is one, else as String.
func (w *Writer) AString(s string) {
	if isAtom(s) {
		w.bw.WriteString(s)
		return
	}
	w.String(s)
}

// NString writes NIL for a nil-string, else String.
func (w *Writer) NString(s string, ok bool) {
	if !ok {
		w.bw.WriteString("NIL")
		return
	}
	w.String(s)
}

// Mailbox writes a mailbox name: UTF-8 after UTF8=ACCEPT, else modified
// UTF-7; INBOX as an atom, others quoted as Dovecot writes them.
func (w *Writer) Mailbox(name string) {
	if strings.EqualFold(name, "INBOX") {
		w.bw.WriteString("INBOX")
		return
	}
	if !w.UTF8 {
		name = EncodeMUTF7(name)
	}
	w.String(name)
}

// Literal writes b as a literal "{n}\r\n" and its bytes.
func (w *Writer) Literal(b []byte) {
	w.LiteralHeader(int64(len(b)), false)
	w.bw.Write(b)
}

// LiteralHeader writes a literal's header, "~{n}" for BINARY's literal8
// (RFC 3516), for data the caller writes next (Write).
func (w *Writer) LiteralHeader(size int64, binary bool) {
	if binary {
		w.bw.WriteByte('~')
	}
	w.bw.WriteByte('{')
	w.bw.WriteString(strconv.FormatInt(size, 10))
	w.bw.WriteString("}\r\n")
}

// Write writes p as it is: a literal's data.
func (w *Writer) Write(p []byte) (int, error) { return w.bw.Write(p) }

// ReadFrom copies a literal's data from r straight into the buffer:
// io.Copy then needs no buffer of its own.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) { return w.bw.ReadFrom(r) }

// Flags writes a parenthesized list of flags.
func (w *Writer) Flags(flags []imap.Flag) {
	w.Open()
	for i, f := range flags {
		if i > 0 {
			w.SP()
		}
		w.bw.WriteString(string(f))
	}
	w.Close()
}

// NumSet writes a sequence set.
func (w *Writer) NumSet(set imap.NumSet) { w.bw.WriteString(set.String()) }

// DateTime writes an INTERNALDATE, "dd-Mon-yyyy hh:mm:ss +zzzz".
func (w *Writer) DateTime(t time.Time) {
	w.bw.WriteByte('"')
	w.bw.WriteString(t.Format("02-Jan-2006 15:04:05 -0700"))
	w.bw.WriteByte('"')
}

// quotable reports whether s can be a quoted string: short, on one line,
// without NUL, and 8-bit only as UTF-8 to a client that enabled it.
func (w *Writer) quotable(s string) bool {
	if len(s) > maxQuoted {
		return false
	}
	eight := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' || c == 0 {
			return false
		}
		if c >= 0x80 {
			eight = true
		}
	}
	return !eight || (w.UTF8 && utf8.ValidString(s))
}

func (w *Writer) quoted(s string) {
	w.bw.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			w.bw.WriteByte('\\')
		}
		w.bw.WriteByte(s[i])
	}
	w.bw.WriteByte('"')
}

// isAtom reports whether s can be written as an astring's atom (and is
// not NIL, which would read as nil).
func isAtom(s string) bool {
	if s == "" || strings.EqualFold(s, "NIL") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAStringChar(s[i]) {
			return false
		}
	}
	return true
}

package smtp

import (
	"io"
)

// Replies for DATA content that breaks RFC 5321 section 2.3.8: every line
// ends with CRLF, and CR and LF appear nowhere else. A receiver that
// accepted other line endings would disagree with some relay about where
// a message ends, which is what SMTP smuggling exploits; NUL is refused
// because no text or 8BITMIME message may contain it (RFC 6152).
var (
	errBareLineEnding = &Error{Code: 550, EnhancedCode: [3]int{5, 6, 0},
		Message: "Message contains a bare CR or LF; lines must end with CRLF (RFC 5321 2.3.8)"}
	errNulInData = &Error{Code: 550, EnhancedCode: [3]int{5, 6, 0},
		Message: "Message contains a NUL character"}
)

// dataReader passes a message's dot-unstuffed DATA through unchanged and
// records the first line-ending violation. It never stops early: the
// caller reads to the real end of data before answering, so that no
// unread byte is ever taken for a command.
//
// go-smtp ends DATA only at CRLF "." CRLF, but hands a bare LF on as
// content; this reader is where such content is caught. Two quirks of
// go-smtp's end-of-data scanner matter here. It drops a CR that directly
// follows a leading dot ("CRLF . CR x" arrives as "CRLF x"), so that one
// bare CR is invisible; the sequence does not end the message either, so
// nothing is smuggled. And after a bare CR it does not see the CRLF that
// follows as a line end, so "CR CRLF . CRLF" does not end DATA: whatever
// the client sends next is read as content until a later CRLF "." CRLF,
// and the bare CR then gets the whole merged message refused. No unread
// byte is ever taken for a command in either case.
type dataReader struct {
	r      io.Reader
	prevCR bool
	bad    *Error
}

func newDataReader(r io.Reader) *dataReader { return &dataReader{r: r} }

func (d *dataReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if d.bad == nil {
		d.scan(p[:n])
	}
	if err == io.EOF && d.prevCR && d.bad == nil {
		d.bad = errBareLineEnding
	}
	return n, err
}

func (d *dataReader) scan(b []byte) {
	for _, c := range b {
		switch c {
		case '\r':
			if d.prevCR {
				d.bad = errBareLineEnding
				return
			}
			d.prevCR = true
		case '\n':
			if !d.prevCR {
				d.bad = errBareLineEnding
				return
			}
			d.prevCR = false
		default:
			if d.prevCR {
				d.bad = errBareLineEnding
				return
			}
			if c == 0 {
				d.bad = errNulInData
				return
			}
		}
	}
}

// err reports the first violation seen, or nil.
func (d *dataReader) err() error {
	if d.bad == nil {
		return nil
	}
	return d.bad
}

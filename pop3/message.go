package pop3

import (
	"bufio"
	"errors"
	"io"
)

// writeMessage copies a message from r to w as the body of a multi-line
// response (RFC 1939 section 3): every line ends in CRLF whatever the
// file uses (Maildir files have bare LF; the octet counts announced are
// CRLF sizes, so the bytes sent must be too), a line beginning with "."
// gets another "." in front, and a last line without a line ending is
// ended. The terminating ".\r\n" is the caller's.
//
// bodyLines < 0 copies the whole message (RETR); otherwise the header,
// the blank line after it and at most bodyLines lines of the body (TOP).
// rb is a reader to reuse (reset onto r).
func writeMessage(w *bufio.Writer, rb *bufio.Reader, r io.Reader, bodyLines int) error {
	rb.Reset(r)
	lineStart := true // the next byte written begins a line
	pendingCR := false
	inBody := false
	lineLen := 0 // bytes written on the current line, to find the blank line
	for {
		chunk, err := rb.ReadSlice('\n')
		if len(chunk) > 0 {
			complete := chunk[len(chunk)-1] == '\n'
			var content []byte
			if complete {
				content = chunk[:len(chunk)-1]
				if len(content) > 0 && content[len(content)-1] == '\r' {
					content = content[:len(content)-1]
				} else if len(content) == 0 && pendingCR {
					pendingCR = false // the CR of this CRLF came with the previous chunk
				}
			} else {
				content = chunk
			}
			if pendingCR {
				// A CR that turned out not to precede LF is data.
				w.WriteByte('\r')
				lineLen++
				pendingCR = false
			}
			if !complete && content[len(content)-1] == '\r' && err == bufio.ErrBufferFull {
				// Hold a CR back until we know whether LF follows it.
				content = content[:len(content)-1]
				pendingCR = true
			}
			if lineStart && len(content) > 0 && content[0] == '.' {
				w.WriteByte('.')
			}
			w.Write(content)
			lineLen += len(content)
			lineStart = false
			if complete {
				w.WriteString("\r\n")
				lineStart = true
				if bodyLines >= 0 {
					if inBody {
						bodyLines--
					} else if lineLen == 0 {
						inBody = true
					}
					if inBody && bodyLines == 0 {
						return nil
					}
				}
				lineLen = 0
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			if pendingCR {
				w.WriteByte('\r')
			}
			if !lineStart {
				w.WriteString("\r\n")
			}
			return nil
		default:
			return err
		}
	}
}

// newMessageReader returns the reader writeMessage reuses per session;
// 32 KiB reads most messages' lines without splitting them.
func newMessageReader() *bufio.Reader {
	return bufio.NewReaderSize(nil, 32<<10)
}

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// bodyHashField is the header field that carries the SHA-256 of the
// message's body, so that a checker can verify any stored copy, also one
// the server stored but never acknowledged.
const bodyHashField = "X-Smtpload-Body-SHA256"

// maxLine is the longest line the generator writes, CRLF excluded
// (RFC 5322 section 2.1.1 recommends at most 78).
const maxLine = 76

// filler is the text body lines are cut from: printable ASCII that never
// puts a '.' at the start of a line, so the bytes on the wire are the
// message's bytes plus the final ".\r\n" and nothing else.
const filler = "The quick brown fox jumps over the lazy dog 0123456789 " +
	"PACK MY BOX WITH FIVE DOZEN LIQUOR JUGS abcdefghijklmnopqrstuvwxyz "

// message is one generated message.
type message struct {
	id   string // Message-ID, angle brackets included
	data []byte // header, blank line and body, CRLF line endings
	body []byte // the part of data after the blank line
	hash string // hex SHA-256 of body
}

// newMessage builds message seq of a run for rcpt, size bytes long in
// total (header, the blank line and the body) whenever size leaves room
// for the body's first line, and as short as possible otherwise. The body
// starts with a line naming the message, so no two bodies are equal.
func newMessage(run string, seq int, from, rcpt, domain string, size int, now time.Time) message {
	id := fmt.Sprintf("<%s.%d@%s>", run, seq, domain)
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "From: <%s>\r\n", from)
	fmt.Fprintf(&hdr, "To: <%s>\r\n", rcpt)
	fmt.Fprintf(&hdr, "Subject: smtpload %s message %d\r\n", run, seq)
	fmt.Fprintf(&hdr, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&hdr, "Message-ID: %s\r\n", id)
	hdr.WriteString("MIME-Version: 1.0\r\n")
	hdr.WriteString("Content-Type: text/plain; charset=us-ascii\r\n")
	// The hash is filled in once the body exists; its length is fixed,
	// so the header's length is known now. The field is folded to keep
	// its lines within 78 characters.
	hashAt := hdr.Len() + len(bodyHashField) + 4
	fmt.Fprintf(&hdr, "%s:\r\n %s\r\n\r\n", bodyHashField, strings.Repeat("0", 2*sha256.Size))

	first := fmt.Sprintf("smtpload run %s message %d\r\n", run, seq)
	bodyLen := max(size-hdr.Len(), len(first))
	data := make([]byte, 0, hdr.Len()+bodyLen)
	data = append(data, hdr.String()...)
	data = append(data, first...)
	data = appendFiller(data, bodyLen-len(first), seq)
	body := data[hdr.Len():]
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	copy(data[hashAt:], hash)
	return message{id: id, data: data, body: body, hash: hash}
}

// appendFiller appends exactly n bytes of CRLF-terminated lines of at
// most maxLine characters. n == 1 cannot be a line: it is spread over the
// last two lines instead, and for n == 1 alone one byte too many is
// written (the only case where the size is not exact).
func appendFiller(b []byte, n, seq int) []byte {
	if n <= 0 {
		return b
	}
	if n < 3 {
		return append(b, "\r\n"...) // an empty line; for n == 1, one byte over
	}
	off := seq % len(filler)
	line := func(k int) { // appends a line of k bytes, CRLF included
		for k-2 > 0 {
			c := filler[off%len(filler)]
			if c == ' ' && (k-2 == 1 || len(b) > 0 && b[len(b)-1] == '\n') {
				c = '-' // no space at either end of a line
			}
			b = append(b, c)
			off++
			k--
		}
		b = append(b, '\r', '\n')
	}
	const full = maxLine + 2
	for n > 0 {
		switch {
		case n >= full+3 || n == full:
			line(full)
			n -= full
		case n > full: // full+1 or full+2: two shorter lines
			line(n / 2)
			n -= n / 2
		default:
			line(n)
			n = 0
		}
	}
	return b
}

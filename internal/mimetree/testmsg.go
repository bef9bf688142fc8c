package mimetree

import (
	"bytes"
	"fmt"
)

// Nested returns a message of levels multiparts each nested in the last,
// with one text part innermost (about 75 bytes a level): the hostile
// shape the depth cap is for. Tests and benchmarks use it.
func Nested(levels int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nSubject: deep\r\n")
	for i := range levels {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nhello\r\n")
	for i := levels - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "\r\n--b%d--\r\n", i)
	}
	return b.Bytes()
}

package sieve

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"net/mail"
	"strings"

	"github.com/emersion/go-message/charset"
)

// Field is one header field as it is in the message: Value is what follows
// the colon, folding kept, without the final line break.
type Field struct {
	Name  string
	Value string
}

// Message is what a script looks at: the header fields in order and the
// body, read only when a body test needs it.
type Message struct {
	Header   []Field
	Body     io.ReaderAt
	BodySize int64
	hdrSize  int64
}

// Size is the size of the whole message in bytes, as the size test counts.
func (m *Message) Size() int64 { return m.hdrSize + m.BodySize }

// ReadMessage reads a message whole (header and body) from r.
func ReadMessage(r io.Reader, maxSize int64) (*Message, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSize+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > maxSize {
		return nil, &Error{Msg: "message too large"}
	}
	return ParseMessage(b), nil
}

// ParseMessage splits a message held in memory into header fields and body.
func ParseMessage(b []byte) *Message {
	m := &Message{}
	br := bufio.NewReader(bytes.NewReader(b))
	var off int64
	for {
		line, err := br.ReadString('\n')
		if line == "" && err != nil {
			break
		}
		off += int64(len(line))
		t := strings.TrimRight(line, "\r\n")
		if t == "" {
			break
		}
		if (t[0] == ' ' || t[0] == '\t') && len(m.Header) > 0 {
			f := &m.Header[len(m.Header)-1]
			f.Value += "\r\n" + t
			continue
		}
		name, value, ok := strings.Cut(t, ":")
		if !ok {
			continue // not a field; Pigeonhole skips such lines too
		}
		m.Header = append(m.Header, Field{Name: strings.TrimRight(name, " \t"), Value: value})
		if err != nil {
			break
		}
	}
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	m.hdrSize = off
	m.Body = bytes.NewReader(b[off:])
	m.BodySize = int64(len(b)) - off
	return m
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

var mailParser = mail.AddressParser{WordDecoder: wordDecoder}

// unfold removes the line breaks of folding and the space around the value.
func unfold(v string) string {
	v = strings.ReplaceAll(v, "\r\n", "")
	v = strings.ReplaceAll(v, "\n", "")
	return strings.Trim(v, " \t")
}

// decodeValue is a field's value as tests see it: unfolded, encoded words
// (RFC 2047) decoded.
func decodeValue(v string) string {
	v = unfold(v)
	if strings.Contains(v, "=?") {
		if d, err := wordDecoder.DecodeHeader(v); err == nil {
			return d
		}
	}
	return v
}

// fieldValues returns the values of the fields named name, in order.
func fieldValues(h []Field, name string) []string {
	var out []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// addr is an address split for the address test.
type addr struct {
	all, local, domain string
	ok                 bool // syntactically an address
}

func parseAddresses(v string) []addr {
	v = unfold(v)
	if v == "" {
		return nil
	}
	p := mail.AddressParser{WordDecoder: wordDecoder}
	list, err := p.ParseList(v)
	if err != nil {
		return []addr{{all: v}}
	}
	out := make([]addr, 0, len(list))
	for _, a := range list {
		out = append(out, splitAddr(a.Address))
	}
	return out
}

func splitAddr(s string) addr {
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return addr{all: s, local: s, ok: true}
	}
	return addr{all: s, local: s[:i], domain: s[i+1:], ok: true}
}

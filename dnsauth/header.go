package dnsauth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
)

// MaxHeaderBytes bounds the header section this package reads from a
// message; the SMTP layer's own limit is expected to be lower.
const MaxHeaderBytes = 1 << 20

// ErrHeaderTooLong is returned for a header section over MaxHeaderBytes.
var ErrHeaderTooLong = errors.New("dnsauth: message header section too long")

// readHeader reads the header section of a message up to and including the
// empty line that ends it (or to EOF for a message without a body).
func readHeader(br *bufio.Reader) ([]byte, error) {
	var buf bytes.Buffer
	lineStart := true // the next read starts a line, not the rest of a long one
	for {
		line, err := br.ReadSlice('\n')
		if buf.Len()+len(line) > MaxHeaderBytes {
			return nil, ErrHeaderTooLong
		}
		buf.Write(line)
		if err == bufio.ErrBufferFull {
			lineStart = false
			continue
		}
		if err == io.EOF {
			return buf.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		if lineStart && (string(line) == "\r\n" || string(line) == "\n") {
			return buf.Bytes(), nil
		}
		lineStart = true
	}
}

// headerField is one field of a header section.
type headerField struct {
	name string // as written
	raw  string // the whole field, continuation lines and line end included
}

// value returns the unfolded value without its line ends.
func (f headerField) value() string {
	v := f.raw[len(f.name)+1:]
	v = strings.ReplaceAll(v, "\r\n", "")
	return strings.TrimSpace(strings.ReplaceAll(v, "\n", ""))
}

// splitHeader splits a header section into fields. Lines that are neither
// a field nor a continuation are kept, attached to the previous field, so
// that joining the raw fields gives back the input.
func splitHeader(hdr []byte) []headerField {
	var fields []headerField
	s := string(hdr)
	for len(s) > 0 {
		end := strings.IndexByte(s, '\n') + 1
		if end == 0 {
			end = len(s)
		}
		line := s[:end]
		s = s[end:]
		if strings.TrimRight(line, "\r\n") == "" {
			break // the blank line ending the header
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1].raw += line
			continue
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok || strings.ContainsAny(name, " \t") {
			if len(fields) > 0 {
				fields[len(fields)-1].raw += line
			}
			continue
		}
		fields = append(fields, headerField{name: name, raw: line})
	}
	return fields
}

// FromDomain returns the domain of the single author address in the From
// field of a header section, the domain DMARC protects (RFC 7489 section
// 6.6.1). A header without exactly one From field naming exactly one
// address is an error: such a message cannot be evaluated, and RFC 7489
// says it should be rejected or treated as failing.
func FromDomain(header []byte) (string, error) {
	var from []headerField
	for _, f := range splitHeader(header) {
		if strings.EqualFold(f.name, "From") {
			from = append(from, f)
		}
	}
	if len(from) != 1 {
		return "", fmt.Errorf("dnsauth: %d From fields, want 1", len(from))
	}
	addrs, err := mail.ParseAddressList(from[0].value())
	if err != nil {
		return "", fmt.Errorf("dnsauth: From: %w", err)
	}
	if len(addrs) != 1 {
		return "", fmt.Errorf("dnsauth: From names %d addresses, want 1", len(addrs))
	}
	_, domain := splitAddress(addrs[0].Address)
	if domain == "" {
		return "", errors.New("dnsauth: From address has no domain")
	}
	return strings.ToLower(strings.TrimSuffix(domain, ".")), nil
}

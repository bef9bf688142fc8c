package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"mime"
	"strings"

	"github.com/emersion/go-message/textproto"
	"github.com/mailagent/mailagent/internal/mimetree"
)

// base64BinaryParts rewrites every part of msg whose
// Content-Transfer-Encoding is "binary" into base64, the header field
// changed to say so and everything else left byte for byte; a message
// without such a part is returned as is.
//
// APPEND with a literal8 (RFC 3516 section 4.4) is how binary content
// reaches the server. Maildir keeps lines, not bytes (a bare LF is read
// back as CRLF), and BODY[] may not carry NUL outside a literal8 (RFC
// 3501 section 4.3), so the parts that hold raw bytes are stored as
// base64, as Dovecot stores them: BINARY[part] then gives the appended
// bytes back exactly, and BODY[part] something every client can read.
//
// The nesting it follows is bounded as the MIME parser bounds it
// (mimetree.MaxDepth, mimetree.MaxParts); msg is bounded by the APPEND
// limit before it is read.
func base64BinaryParts(msg []byte) []byte {
	parts := 0
	out, changed := convertBinaryPart(msg, 0, &parts)
	if !changed {
		return msg
	}
	return out
}

// convertBinaryPart converts one part (header and body) and the parts
// within it.
func convertBinaryPart(part []byte, depth int, parts *int) ([]byte, bool) {
	*parts++
	if depth >= mimetree.MaxDepth || *parts > mimetree.MaxParts {
		return part, false
	}
	hlen := headerLen(part)
	head, body := part[:hlen], part[hlen:]
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return part, false
	}
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	mt, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		return convertMultipart(head, body, params["boundary"], depth, parts)
	case mt == "message/rfc822" || mt == "message/global":
		inner, changed := convertBinaryPart(body, depth+1, parts)
		if !changed {
			return part, false
		}
		return append(append([]byte(nil), head...), inner...), true
	case cte == "binary":
		out := make([]byte, 0, len(head)+len(body)*4/3+len(body)/57*2+8)
		out = append(out, replaceCTE(head)...)
		enc := base64.StdEncoding
		for i := 0; i < len(body); i += 57 { // 76 characters a line (RFC 2045 section 6.8)
			out = enc.AppendEncode(out, body[i:min(i+57, len(body))])
			out = append(out, '\r', '\n')
		}
		return out, true
	}
	return part, false
}

// convertMultipart converts the parts of a multipart body, keeping its
// preamble, delimiters and epilogue.
func convertMultipart(head, body []byte, boundary string, depth int, parts *int) ([]byte, bool) {
	delim := []byte("--" + boundary)
	// Each delimiter line starts the body or follows a line break, which
	// belongs to the delimiter (RFC 2046 section 5.1.1).
	type delimiter struct{ lineBreak, end int } // [lineBreak, end) with its line's end
	var ds []delimiter
	for i := 0; i <= len(body)-len(delim); {
		j := bytes.Index(body[i:], delim)
		if j < 0 {
			break
		}
		at := i + j
		i = at + len(delim)
		if at > 0 && body[at-1] != '\n' {
			continue
		}
		d := delimiter{lineBreak: at, end: len(body)}
		if at > 0 {
			d.lineBreak = at - 1
			if d.lineBreak > 0 && body[d.lineBreak-1] == '\r' {
				d.lineBreak--
			}
		}
		if n := bytes.IndexByte(body[i:], '\n'); n >= 0 {
			d.end = i + n + 1
		}
		ds = append(ds, d)
		if bytes.HasPrefix(body[i:], []byte("--")) {
			break // the close delimiter: the rest is the epilogue
		}
	}
	if len(ds) < 2 {
		return nil, false
	}
	out := append([]byte(nil), head...)
	out = append(out, body[:ds[0].lineBreak]...)
	changed := false
	for k, d := range ds[:len(ds)-1] {
		next := ds[k+1]
		out = append(out, body[d.lineBreak:d.end]...)
		if d.end > next.lineBreak {
			return nil, false
		}
		p, ch := convertBinaryPart(body[d.end:next.lineBreak], depth+1, parts)
		changed = changed || ch
		out = append(out, p...)
	}
	out = append(out, body[ds[len(ds)-1].lineBreak:]...)
	return out, changed
}

// headerLen is the length of a part's header with the blank line that
// ends it (CRLF or bare LF), or all of part when there is none.
func headerLen(part []byte) int {
	if bytes.HasPrefix(part, []byte("\r\n")) {
		return 2
	}
	if bytes.HasPrefix(part, []byte("\n")) {
		return 1
	}
	for i := 0; i < len(part); {
		j := bytes.IndexByte(part[i:], '\n')
		if j < 0 {
			return len(part)
		}
		i += j + 1
		if bytes.HasPrefix(part[i:], []byte("\r\n")) {
			return i + 2
		}
		if bytes.HasPrefix(part[i:], []byte("\n")) {
			return i + 1
		}
	}
	return len(part)
}

// replaceCTE returns a header with its Content-Transfer-Encoding field
// (continuation lines included) saying base64.
func replaceCTE(head []byte) []byte {
	out := make([]byte, 0, len(head)+8)
	skipping := false
	for rest := head; len(rest) > 0; {
		n := bytes.IndexByte(rest, '\n') + 1
		if n == 0 {
			n = len(rest)
		}
		line := rest[:n]
		rest = rest[n:]
		if skipping && (line[0] == ' ' || line[0] == '\t') {
			continue
		}
		skipping = false
		if name, _, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(strings.TrimSpace(string(name)), "Content-Transfer-Encoding") {
			out = append(out, "Content-Transfer-Encoding: base64\r\n"...)
			skipping = true
			continue
		}
		out = append(out, line...)
	}
	return out
}

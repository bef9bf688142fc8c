// Package mimetree parses the MIME structure of a message once, in one
// pass over its bytes and bounded memory, into what IMAP's BODYSTRUCTURE,
// BODY[section] and BINARY[section] need: for every part the offsets of
// its header and body, sizes and line counts, the fields of its
// Content-* header, and the envelope fields of embedded messages.
//
// Offsets, sizes and line counts are those of the message with CRLF line
// endings (a bare LF counts as CRLF), the form IMAP serves it in.
//
// Like Dovecot's message parser, it bounds the work a hostile message can
// cause: at most MaxDepth nested levels and MaxParts parts in all. A
// multipart or message/rfc822 part below the depth cap is one leaf (its
// content is not split), and once MaxParts parts exist the rest of the
// message belongs to the parts already open: never an error for the
// whole message. Per line, the boundaries of all open multiparts are
// found with one map lookup per candidate, so the cost is linear in the
// message's size whatever its nesting.
//
// A Tree is stored in maildir's per-message cache (Marshal, Unmarshal),
// so a message is parsed once, not on every FETCH.
package mimetree

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"slices"
	"strings"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// Limits, as Dovecot's message parser sets them.
const (
	// MaxDepth is the deepest nesting of parts that is split: a part at
	// this depth (the message is at 0) is a leaf whatever its type.
	MaxDepth = 100
	// MaxParts bounds the parts of a message, the message included.
	MaxParts = 10_000
	// MaxHeader bounds the bytes of one part's header that are parsed
	// for its fields; the rest is skipped (still counted in sizes).
	MaxHeader = 64 << 10
	// maxBoundary bounds a boundary parameter (RFC 2046: 70); a longer
	// one leaves its multipart a leaf.
	maxBoundary = 200
)

// Param is one parameter of Content-Type or Content-Disposition, its
// name in lower case and its value decoded (RFC 2231, RFC 2047).
type Param struct {
	Name, Value string
}

// Field is one header field as go-message's textproto reads it.
type Field struct {
	Key, Value string
}

// Part is one MIME part (the message itself is the root).
type Part struct {
	// Type and Subtype are the media type in lower case ("text",
	// "plain" when there is no Content-Type).
	Type, Subtype string
	// Params are the Content-Type parameters, sorted by name.
	Params []Param
	// ID, Description, Encoding, Location and MD5 are the raw values of
	// Content-ID, Content-Description, Content-Transfer-Encoding,
	// Content-Location and Content-MD5.
	ID, Description, Encoding, Location, MD5 string
	// Disposition is Content-Disposition's value in lower case, with
	// its parameters.
	Disposition       string
	DispositionParams []Param
	// Language is Content-Language's list.
	Language []string
	// HeaderStart, BodyStart and End delimit the part: its header is
	// [HeaderStart, BodyStart) (with the blank line ending it), its body
	// [BodyStart, End).
	HeaderStart, BodyStart, End int64
	// Lines is the number of lines of the body.
	Lines int64
	// Children are a multipart's parts, or for message/rfc822 (and
	// message/global) the embedded message, whose Envelope is set.
	Children []*Part
	// Envelope holds the fields of an embedded message's header (and
	// the root's) that IMAP's ENVELOPE is made of: the first of each
	// that is present, as go-message's Header.Get returns it.
	Envelope []Field
	// Truncated marks a multipart or message part presented as a leaf
	// because it lies at the depth cap or beyond the part limit.
	Truncated bool
}

// IsMultipart reports whether the part has parts of its own.
func (p *Part) IsMultipart() bool { return p.Type == "multipart" && !p.Truncated }

// IsMessage reports whether the part is an embedded message that was
// parsed (Children[0] is that message).
func (p *Part) IsMessage() bool {
	return p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global") && len(p.Children) == 1
}

// Size is the body's size in bytes.
func (p *Part) Size() int64 { return p.End - p.BodyStart }

// Param returns the Content-Type parameter name (lower case).
func (p *Part) Param(name string) string {
	for _, x := range p.Params {
		if x.Name == name {
			return x.Value
		}
	}
	return ""
}

// envelopeFields are the header fields ENVELOPE is built from.
var envelopeFields = []string{"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To", "Message-Id"}

// open is a part being parsed.
type open struct {
	p        *Part
	depth    int
	inHeader bool
	bodyLine int64  // lines before the body
	boundary string // a multipart's boundary while it is active
	closed   bool   // its close delimiter was seen (epilogue)
	full     bool   // no more children may be created (part limit)
	message  bool   // an embedded message (its envelope is kept)
	digest   bool   // a multipart/digest: parts default to message/rfc822
}

type parser struct {
	stack  []*open
	active map[string][]int // boundary → stack indices using it, innermost last
	// lens counts active boundaries by length: a line whose candidate
	// has a length no active boundary has costs no map lookup.
	lens   [maxBoundary + 1]int32
	parts  int
	hdr    []byte // the current header, up to MaxHeader
	pos    int64  // offset (CRLF form) of the next byte
	lines  int64  // newlines before pos
	lastCR bool   // the previous byte read was CR
}

// Parse reads a message and returns its structure. It fails only if r
// does.
func Parse(r io.Reader) (*Part, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	root := &Part{}
	ps := &parser{active: map[string][]int{}, parts: 1}
	ps.stack = []*open{{p: root, inHeader: true}}
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			ps.line(chunk, err == bufio.ErrBufferFull)
		}
		if err == bufio.ErrBufferFull {
			// The rest of a long line: no boundary can start there.
			for err == bufio.ErrBufferFull {
				chunk, err = br.ReadSlice('\n')
				ps.advance(chunk)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	ps.closeAbove(-1, ps.pos, ps.lines)
	return root, nil
}

// advance counts a chunk's bytes and newlines. ReadSlice hands over
// chunks that hold at most one newline, at their end.
func (ps *parser) advance(b []byte) {
	n := len(b)
	if n == 0 {
		return
	}
	ps.pos += int64(n)
	if b[n-1] == '\n' {
		ps.lines++
		if !(n > 1 && b[n-2] == '\r' || n == 1 && ps.lastCR) {
			ps.pos++ // a bare LF is served as CRLF
		}
	}
	ps.lastCR = b[n-1] == '\r'
}

// line handles one line (or the first chunk of a long one).
func (ps *parser) line(b []byte, partial bool) {
	start, startLines := ps.pos, ps.lines
	if !partial && len(b) > 2 && b[0] == '-' && b[1] == '-' && len(ps.active) > 0 {
		if k, final := ps.boundary(b); k >= 0 {
			ps.delimiter(k, final, start, startLines, b)
			return
		}
	}
	ps.advance(b)
	top := ps.stack[len(ps.stack)-1]
	if !top.inHeader {
		return
	}
	if !partial && (len(b) == 1 || len(b) == 2 && b[0] == '\r') {
		ps.headerDone(top, true)
		return
	}
	if room := MaxHeader - len(ps.hdr); room > 0 {
		ps.hdr = append(ps.hdr, b[:min(len(b), room)]...)
	}
}

// boundary finds the innermost open multipart whose boundary line b is,
// and whether it is the close delimiter: "--", the boundary, "--" for
// the close delimiter, then only linear white space to the line's end.
// At most two map lookups, whatever the line.
func (ps *parser) boundary(b []byte) (int, bool) {
	core := b[2:]
	core = bytes.TrimSuffix(core, []byte("\n"))
	core = bytes.TrimSuffix(core, []byte("\r"))
	core = bytes.TrimRight(core, " \t")
	if len(core) == 0 || len(core) > maxBoundary+2 {
		return -1, false
	}
	best, final := -1, false
	if len(core) <= maxBoundary && ps.lens[len(core)] > 0 {
		if idx, ok := ps.active[string(core)]; ok {
			best = idx[len(idx)-1]
		}
	}
	if n := len(core) - 2; n > 0 && n <= maxBoundary && ps.lens[n] > 0 && core[n] == '-' && core[n+1] == '-' {
		if idx, ok := ps.active[string(core[:n])]; ok && idx[len(idx)-1] > best {
			best, final = idx[len(idx)-1], true
		}
	}
	return best, final
}

// delimiter handles a boundary line of the multipart at stack index k.
func (ps *parser) delimiter(k int, final bool, start, startLines int64, b []byte) {
	mp := ps.stack[k]
	if !final && (mp.full || ps.parts >= MaxParts) {
		// No part may be added: the line belongs to the open ones.
		mp.full = true
		ps.advance(b)
		return
	}
	// The line break before a boundary line belongs to the boundary.
	ps.closeAbove(k, max(start-2, 0), startLines-1)
	ps.advance(b)
	if final {
		mp.closed = true
		ps.deactivate(k)
		return
	}
	ps.parts++
	child := &Part{HeaderStart: ps.pos}
	mp.p.Children = append(mp.p.Children, child)
	ps.stack = append(ps.stack, &open{p: child, depth: mp.depth + 1, inHeader: true, digest: mp.p.Subtype == "digest"})
	ps.hdr = ps.hdr[:0]
}

func (ps *parser) deactivate(k int) {
	o := ps.stack[k]
	if o.boundary == "" {
		return
	}
	ps.lens[len(o.boundary)]--
	idx := ps.active[o.boundary]
	idx = slices.DeleteFunc(idx, func(i int) bool { return i == k })
	if len(idx) == 0 {
		delete(ps.active, o.boundary)
	} else {
		ps.active[o.boundary] = idx
	}
	o.boundary = ""
}

// closeAbove ends every part above stack index k at end, where lines
// newlines precede end.
func (ps *parser) closeAbove(k int, end, lines int64) {
	for len(ps.stack)-1 > k {
		i := len(ps.stack) - 1
		o := ps.stack[i]
		if o.inHeader {
			// Cut short: its fields count, its body is empty.
			ps.headerDone(o, false)
			o.p.BodyStart = max(o.p.HeaderStart, end)
		}
		o.p.End = max(o.p.BodyStart, end)
		if o.p.End > o.p.BodyStart {
			o.p.Lines = max(lines-o.bodyLine, 0)
		}
		ps.deactivate(i)
		ps.stack = ps.stack[:i]
		// A delimiter line right after another leaves no line break
		// to give back: a parent never ends before its last part.
		end = o.p.End
	}
}

// headerDone parses the header just read and, if body is set, opens
// the part's body: a multipart's boundary or an embedded message.
func (ps *parser) headerDone(o *open, body bool) {
	o.inHeader = false
	o.p.BodyStart, o.bodyLine = ps.pos, ps.lines
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(append(ps.hdr, '\r', '\n'))))
	ps.hdr = ps.hdr[:0]
	p := o.p
	fill(p, h, o.digest)
	if o.depth == 0 || o.message {
		p.Envelope = envelope(h)
	}
	nested := p.Type == "multipart" || p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global")
	if !nested {
		return
	}
	if !body || o.depth >= MaxDepth || ps.parts >= MaxParts {
		p.Truncated = true
		return
	}
	if p.Type == "multipart" {
		b := p.Param("boundary")
		if b == "" || len(b) > maxBoundary {
			p.Truncated = true
			return
		}
		o.boundary = b
		ps.active[b] = append(ps.active[b], len(ps.stack)-1)
		ps.lens[len(b)]++
		return
	}
	ps.parts++
	child := &Part{HeaderStart: ps.pos}
	p.Children = []*Part{child}
	ps.stack = append(ps.stack, &open{p: child, depth: o.depth + 1, inHeader: true, message: true})
}

// fill sets a part's fields from its header, as go-message reads them.
// A part of a multipart/digest without Content-Type is message/rfc822
// (RFC 2046 §5.1.5), any other text/plain.
func fill(p *Part, raw textproto.Header, digest bool) {
	h := gomessage.Header{Header: raw}
	p.Type, p.Subtype = "text", "plain"
	if digest {
		p.Type, p.Subtype = "message", "rfc822"
	}
	if v := h.Get("Content-Type"); v != "" {
		mt, params, err := mime.ParseMediaType(v)
		if err != nil {
			mt, _, _ = strings.Cut(v, ";")
			params = nil
		}
		t, s, ok := strings.Cut(strings.ToLower(strings.TrimSpace(mt)), "/")
		if ok && t != "" && s != "" {
			p.Type, p.Subtype = t, s
		}
		if err == nil {
			_, params, _ = h.ContentType() // parameters decoded as go-message does
		}
		p.Params = sortedParams(params)
	}
	p.ID = h.Get("Content-Id")
	p.Description = h.Get("Content-Description")
	p.Encoding = h.Get("Content-Transfer-Encoding")
	p.Location = h.Get("Content-Location")
	p.MD5 = h.Get("Content-Md5")
	if d, params, _ := h.ContentDisposition(); d != "" {
		p.Disposition, p.DispositionParams = d, sortedParams(params)
	}
	if v := h.Get("Content-Language"); v != "" {
		for _, l := range strings.Split(v, ",") {
			p.Language = append(p.Language, strings.TrimSpace(l))
		}
	}
}

func sortedParams(m map[string]string) []Param {
	if len(m) == 0 {
		return nil
	}
	out := make([]Param, 0, len(m))
	for k, v := range m {
		out = append(out, Param{Name: k, Value: v})
	}
	slices.SortFunc(out, func(a, b Param) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func envelope(h textproto.Header) []Field {
	var out []Field
	for _, k := range envelopeFields {
		if h.Has(k) {
			out = append(out, Field{Key: k, Value: h.Get(k)})
		}
	}
	return out
}

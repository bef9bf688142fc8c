package mimetree

import (
	"encoding/binary"
	"errors"
)

// encodingVersion is the first byte of Marshal's output; a cached tree
// of another version is parsed again.
const encodingVersion = 1

// ErrBadEncoding is Unmarshal's error for data Marshal did not write.
var ErrBadEncoding = errors.New("mimetree: bad encoding")

// maxString bounds one string in an encoded tree.
const maxString = MaxHeader

// Marshal encodes the tree compactly for a cache.
func (p *Part) Marshal() []byte {
	b := []byte{encodingVersion}
	return p.appendTo(b)
}

func putStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func putParams(b []byte, ps []Param) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, x := range ps {
		b = putStr(b, x.Name)
		b = putStr(b, x.Value)
	}
	return b
}

func (p *Part) appendTo(b []byte) []byte {
	b = putStr(b, p.Type)
	b = putStr(b, p.Subtype)
	b = putParams(b, p.Params)
	for _, s := range []string{p.ID, p.Description, p.Encoding, p.Location, p.MD5, p.Disposition} {
		b = putStr(b, s)
	}
	b = putParams(b, p.DispositionParams)
	b = binary.AppendUvarint(b, uint64(len(p.Language)))
	for _, l := range p.Language {
		b = putStr(b, l)
	}
	b = binary.AppendUvarint(b, uint64(p.HeaderStart))
	b = binary.AppendUvarint(b, uint64(p.BodyStart-p.HeaderStart))
	b = binary.AppendUvarint(b, uint64(p.End-p.BodyStart))
	b = binary.AppendUvarint(b, uint64(p.Lines))
	var fl byte
	if p.Truncated {
		fl |= 1
	}
	b = append(b, fl)
	b = binary.AppendUvarint(b, uint64(len(p.Envelope)))
	for _, f := range p.Envelope {
		b = putStr(b, f.Key)
		b = putStr(b, f.Value)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Children)))
	for _, c := range p.Children {
		b = c.appendTo(b)
	}
	return b
}

type decoder struct {
	b     []byte
	err   error
	parts int
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = ErrBadEncoding
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items of at least one byte each.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = ErrBadEncoding
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) || n > maxString {
		d.err = ErrBadEncoding
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) params() []Param {
	n := d.count()
	var out []Param
	for range n {
		out = append(out, Param{Name: d.str(), Value: d.str()})
	}
	return out
}

// Unmarshal decodes what Marshal wrote; anything else gives
// ErrBadEncoding, never a panic or unbounded work.
func Unmarshal(data []byte) (*Part, error) {
	if len(data) == 0 || data[0] != encodingVersion {
		return nil, ErrBadEncoding
	}
	d := &decoder{b: data[1:]}
	p := d.part(0)
	if d.err != nil || len(d.b) != 0 {
		return nil, ErrBadEncoding
	}
	return p, nil
}

func (d *decoder) part(depth int) *Part {
	d.parts++
	if depth > MaxDepth+1 || d.parts > MaxParts {
		d.err = ErrBadEncoding
		return nil
	}
	p := &Part{Type: d.str(), Subtype: d.str(), Params: d.params()}
	p.ID, p.Description, p.Encoding, p.Location, p.MD5, p.Disposition = d.str(), d.str(), d.str(), d.str(), d.str(), d.str()
	p.DispositionParams = d.params()
	for range d.count() {
		p.Language = append(p.Language, d.str())
	}
	hs, hl, bl, lines := d.uvarint(), d.uvarint(), d.uvarint(), d.uvarint()
	const maxOff = 1 << 50
	if hs > maxOff || hl > maxOff || bl > maxOff || lines > maxOff {
		d.err = ErrBadEncoding
		return nil
	}
	p.HeaderStart = int64(hs)
	p.BodyStart = p.HeaderStart + int64(hl)
	p.End = p.BodyStart + int64(bl)
	p.Lines = int64(lines)
	if len(d.b) == 0 {
		d.err = ErrBadEncoding
		return nil
	}
	p.Truncated = d.b[0]&1 != 0
	d.b = d.b[1:]
	for range d.count() {
		p.Envelope = append(p.Envelope, Field{Key: d.str(), Value: d.str()})
	}
	n := d.count()
	for range n {
		if d.err != nil {
			return nil
		}
		p.Children = append(p.Children, d.part(depth+1))
	}
	if d.err != nil {
		return nil
	}
	return p
}

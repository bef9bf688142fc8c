package headerenc

import (
	"bytes"
	"io"
)

// Body is a message that can be read any number of times: the method
// set of smtp/mail's Body, repeated here so that this package stays
// below every package that carries mail.
type Body interface {
	Open() (io.ReadCloser, error)
	Len() int64
}

// prefixed is a Body with header fields put in front of another Body.
type prefixed struct {
	prefix []byte
	body   Body
}

// Prepend returns body with the header fields hdrs (each without its
// final CRLF) in front. Each goes through Field, so that a field,
// whoever built it (a check, a signer, a local delivery), is exactly one
// field.
func Prepend(body Body, hdrs ...string) Body {
	if len(hdrs) == 0 {
		return body
	}
	var b bytes.Buffer
	for _, h := range hdrs {
		if h = Field(h); h == "" {
			continue
		}
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	if p, ok := body.(*prefixed); ok {
		b.Write(p.prefix)
		return &prefixed{prefix: b.Bytes(), body: p.body}
	}
	return &prefixed{prefix: b.Bytes(), body: body}
}

func (p *prefixed) Open() (io.ReadCloser, error) {
	r, err := p.body.Open()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(p.prefix), r), r}, nil
}

func (p *prefixed) Len() int64 { return int64(len(p.prefix)) + p.body.Len() }

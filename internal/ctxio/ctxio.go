// Package ctxio stops long copies when their context ends: a reader over
// a file or a buffer does not block, so io.Copy would otherwise run to the
// end of a large message after the client, the queue or a shutdown gave
// up on it.
package ctxio

import (
	"context"
	"io"
)

// NewReader returns a reader that reads r until ctx is done, then returns
// ctx's error. A Read already under way is not interrupted.
func NewReader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx, r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

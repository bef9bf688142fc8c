package imap

import (
	"bytes"
	"compress/flate"
	"io"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/imap/internal/inflate"
)

// COMPRESS=DEFLATE (RFC 4978): after the OK, both directions are raw
// DEFLATE streams. A client may end what it sends with a sync flush
// (an empty stored block: Go's, Python's) or a partial flush (an empty
// fixed-Huffman block: zlib's Z_PARTIAL_FLUSH, as mbsync sends), whose
// last bits zlib may hold back until the client's next write. The
// client's stream is read with imap/internal/inflate, which hands out
// each block's data when the block ends and reads no bit past it (Go's
// compress/flate waits for a stored block; klauspost/compress's
// partial-block mode reads ten bits past a block's end, so mbsync and
// the server waited for each other in the middle of an APPEND). The
// compressor is taken from a pool at a command's first response and
// given back after the sync flush that ends it: a new compressor after
// a sync flush continues a valid stream (it only refers to no earlier
// data), so an idle connection holds none. The decompressor keeps the
// 32 KiB window the client's compressor may refer back into for as long
// as the connection lasts.

// deflateLevel trades ratio for CPU as Dovecot's default does.
const deflateLevel = flate.BestSpeed

// rawWriter writes to the connection (below compression) with a
// deadline per write.
type rawWriter struct{ c *conn }

func (d rawWriter) Write(p []byte) (int, error) {
	d.c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return d.c.nc.Write(p)
}

// rawReader reads from the connection below compression.
type rawReader struct{ c *conn }

func (r rawReader) Read(p []byte) (int, error) { return r.c.nc.Read(p) }

// source is what the command reader reads: the connection, or its
// decompressed stream.
func (c *conn) source() io.Reader {
	if c.inflate != nil {
		return c.inflate
	}
	return c.nc
}

// deflater returns the compressor of the current command's responses.
func (c *conn) deflater() *flate.Writer {
	if c.deflate == nil {
		c.deflate = c.srv.deflaters.Get().(*flate.Writer)
		c.deflate.Reset(rawWriter{c})
	}
	return c.deflate
}

// endDeflate pushes the compressed responses out (a sync flush) and
// gives the compressor back.
func (c *conn) endDeflate() error {
	if c.deflate == nil {
		return nil
	}
	err := c.deflate.Flush()
	c.deflate.Reset(io.Discard)
	c.srv.deflaters.Put(c.deflate)
	c.deflate = nil
	return err
}

// cmdCompress serves COMPRESS DEFLATE: the OK goes out uncompressed and
// everything after it, both ways, compressed.
func (c *conn) cmdCompress(cmd *imapwire.Command) (okStatus, error) {
	if c.compressed {
		return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeNo, Code: "COMPRESSIONACTIVE", Text: "Compression is already on"}
	}
	if cmd.Args.(*imapwire.Compress).Algorithm != "DEFLATE" {
		return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Only DEFLATE is offered"}
	}
	c.w.Status(cmd.Tag, imap.StatusResponseTypeOK, "", "DEFLATE active")
	if err := c.flush(); err != nil {
		c.state = stateLogout
		return okStatus{}, errSilent
	}
	// The client's stream is compressed from the octet after the
	// command's CRLF (RFC 4978 section 3), and a client may send on
	// before the OK: what is buffered already is compressed data.
	var pending []byte
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		pending = bytes.Clone(b)
	}
	c.compressed = true
	c.inflate = inflate.NewReader(io.MultiReader(bytes.NewReader(pending), rawReader{c}))
	c.r.Reset(clockedReader{c})
	return okStatus{}, errAnswered
}

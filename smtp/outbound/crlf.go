package outbound

import "io"

// crlfWriter turns every bare CR and every bare LF into CRLF before
// passing the bytes on. The message on the wire then has one line-ending
// convention only, whatever the stored copy holds; dot-stuffing is left to
// the DATA writer underneath, which sees proper CRLF lines.
type crlfWriter struct {
	w       io.Writer
	pending bool // the previous byte was a CR not yet written
	buf     []byte
}

func newCRLFWriter(w io.Writer) *crlfWriter {
	return &crlfWriter{w: w, buf: make([]byte, 0, 32*1024)}
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if c.pending {
			// A CR ends a line whether or not an LF follows it.
			c.buf = append(c.buf, '\r', '\n')
			c.pending = false
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\r':
			c.pending = true
		case '\n':
			c.buf = append(c.buf, '\r', '\n')
		default:
			c.buf = append(c.buf, b)
		}
		if len(c.buf) >= cap(c.buf)-2 {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return len(p), nil
}

// Close writes a CR still held back and flushes; it does not close the
// underlying writer.
func (c *crlfWriter) Close() error {
	if c.pending {
		c.buf = append(c.buf, '\r', '\n')
		c.pending = false
	}
	return c.flush()
}

func (c *crlfWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.w.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

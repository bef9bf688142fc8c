package imap

import (
	"bufio"
	"compress/flate"
	"fmt"
	"net"
	"strings"
	"testing"
)

// flateConn is the client's side of COMPRESS=DEFLATE: writes compressed
// and flushed, reads decompressed.
type flateConn struct {
	net.Conn
	w *flate.Writer
	r interface{ Read([]byte) (int, error) }
}

func (f *flateConn) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

func (f *flateConn) Read(p []byte) (int, error) { return f.r.Read(p) }

// TestCompress: after COMPRESS DEFLATE (RFC 4978) commands and
// responses, a whole message among them, travel compressed both ways,
// over many commands (a new compressor per command continues the
// stream); a second COMPRESS is refused.
func TestCompress(t *testing.T) {
	st := newTestStack(t)
	body := "Subject: long\r\n\r\n" + strings.Repeat("compressible line of text\r\n", 2000)
	st.deliver("alice@local.example", "INBOX", body)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.expect("BAD", "COMPRESS GZIP")
	cl.ok("COMPRESS DEFLATE")
	fw, err := flate.NewWriter(cl.c, flate.BestSpeed)
	must(t, err)
	raw := cl.c
	cl.c = &flateConn{Conn: raw, w: fw, r: flate.NewReader(cl.r)}
	cl.r = bufio.NewReader(cl.c)
	for i := range 20 {
		cl.ok("NOOP")
		if i%5 == 0 {
			cl.ok("SELECT INBOX")
		}
	}
	lines := cl.ok("FETCH 1 BODY.PEEK[]")
	if !has(lines, fmt.Sprintf("BODY[] {%d}", len(body))) {
		t.Fatalf("FETCH over DEFLATE: %q", lines[:1])
	}
	cl.expect("NO [COMPRESSIONACTIVE]", "COMPRESS DEFLATE")
	cl.ok("LOGOUT")
}

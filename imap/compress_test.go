package imap

import (
	"bufio"
	"compress/flate"
	"encoding/hex"
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

// TestCompressPartialFlush: a client that ends each command with zlib's
// Z_PARTIAL_FLUSH (an empty fixed-Huffman block, as mbsync does) rather
// than a sync flush is answered at once; Go's compress/flate reader
// hands out data only at stored blocks and left such a command unread.
func TestCompressPartialFlush(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("COMPRESS DEFLATE")
	// "a3 NOOP\r\n" deflated by zlib 1.2 (level 6, raw) then
	// deflate(Z_PARTIAL_FLUSH): one fixed-Huffman block and the empty
	// one after it, not byte-aligned, no stored block.
	partial, err := hex.DecodeString("4a3456f0f3f70fe0e50208")
	must(t, err)
	if _, err := cl.c.Write(partial); err != nil {
		t.Fatal(err)
	}
	raw := cl.c
	cl.c = &flateConn{Conn: raw, r: flate.NewReader(cl.r)}
	cl.r = bufio.NewReader(cl.c)
	if _, st := cl.until("a3"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("NOOP after a partial flush: %q", st)
	}
}

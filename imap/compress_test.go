package imap

import (
	"bufio"
	"compress/flate"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"regexp"
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
	if has(cl.ok("CAPABILITY"), "COMPRESS=DEFLATE") {
		t.Fatal("COMPRESS=DEFLATE advertised with compression on")
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

// TestCompressPipelinedAppendPartialFlush sends pipelined APPENDs with
// LITERAL+ messages of a few KiB, each command deflated by zlib and
// ended with Z_PARTIAL_FLUSH as mbsync sends them, over STARTTLS and
// over implicit TLS: each is answered from the bytes sent up to its
// flush (a decompressor that read past a block's end waited for the
// next command while the client waited for the answer), and the
// messages are stored whole. COMPRESS=DEFLATE is advertised after
// login only.
func TestCompressPipelinedAppendPartialFlush(t *testing.T) {
	deflated, err := os.ReadFile("internal/inflate/testdata/append-partial.deflate")
	must(t, err)
	plain, err := os.ReadFile("internal/inflate/testdata/append-partial.txt")
	must(t, err)
	var sizes []string
	for _, m := range regexp.MustCompile(`\{(\d+)\+\}`).FindAllSubmatch(plain, -1) {
		sizes = append(sizes, string(m[1]))
	}
	// The compressed size of each command, to send them as mbsync does:
	// two pipelined, then one, then three.
	chunks := []int{714 + 599, 661, 743 + 818 + 899}
	answered := [][]string{{"p0", "p1"}, {"p2"}, {"p3", "p4", "p5"}}
	for _, implicit := range []bool{false, true} {
		t.Run(fmt.Sprintf("implicitTLS=%v", implicit), func(t *testing.T) {
			st := newTestStack(t)
			opts := st.options()
			opts.AllowInsecureAuth = false
			opts.ImplicitTLS = implicit
			_, addr := st.serve(opts)
			connect := func() *client {
				if implicit {
					return dialTLS(t, addr)
				}
				cl := dial(t, addr)
				cl.startTLS()
				return cl
			}
			cl := connect()
			if has(cl.ok("CAPABILITY"), "COMPRESS=DEFLATE") {
				t.Fatal("COMPRESS=DEFLATE advertised before login")
			}
			cl.login("alice@local.example")
			wantLine(t, cl.ok("CAPABILITY"), "COMPRESS=DEFLATE")
			cl.ok("COMPRESS DEFLATE")
			raw := cl.c
			cl.c = &flateConn{Conn: raw, r: flate.NewReader(cl.r)}
			cl.r = bufio.NewReader(cl.c)
			rest := deflated
			for i, n := range chunks {
				if _, err := raw.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
				for _, tag := range answered[i] {
					if _, st := cl.until(tag); !strings.HasPrefix(st, "OK") {
						t.Fatalf("%s: %q", tag, st)
					}
				}
			}
			// The stored messages, seen from an uncompressed session.
			cl = connect()
			cl.login("alice@local.example")
			cl.ok("SELECT INBOX")
			lines := cl.ok("FETCH 1:* (RFC822.SIZE)")
			if len(lines) != len(sizes) {
				t.Fatalf("%d messages stored, want %d: %q", len(lines), len(sizes), lines)
			}
			for i, size := range sizes {
				wantLine(t, lines, fmt.Sprintf("* %d FETCH (RFC822.SIZE %s)", i+1, size))
			}
		})
	}
}

package imap

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestLiteralHeader(t *testing.T) {
	for _, c := range []struct {
		line string
		cut  bool
		want header
	}{
		{"a SELECT INBOX\r\n", false, header{}},
		{"a SELECT {5}\r\n", false, header{ok: true, size: 5, start: 9}},
		{"a SELECT {5}\n", false, header{ok: true, size: 5, start: 9}},
		{"a SELECT {5} \r\n", false, header{ok: true, size: 5, start: 9}},
		{"a SELECT {5}\r\r\n", false, header{}},
		{"a SELECT {5+}\r\n", false, header{ok: true, size: 5, nonSync: true, start: 9}},
		{"a SELECT {5-}\r\n", false, header{ok: true, size: 5, nonSync: true, minus: true, start: 9}},
		{"a APPEND x ~{12}\r\n", false, header{ok: true, size: 12, binary: true, start: 11}},
		{"a SELECT {}\r\n", false, header{}},
		{"a SELECT {+}\r\n", false, header{}},
		{"a SELECT 5}\r\n", false, header{}},
		{"a SELECT {4294967295}\r\n", false, header{ok: true, size: 4294967295, start: 9}},
		{"a SELECT {99999999999999999999999}\r\n", false, header{ok: true, size: 1 << 40, start: 9}},
		{"12345}\r\n", false, header{}},
		{"12345}\r\n", true, header{ok: true, size: 1 << 40}},
		{"}\r\n", true, header{}},
	} {
		if got := literalHeader([]byte(c.line), c.cut); got != c.want {
			t.Errorf("%q (cut %t): got %+v, want %+v", c.line, c.cut, got, c.want)
		}
	}
}

func TestClassify(t *testing.T) {
	for line, want := range map[string]uint8{
		"a APPEND INBOX {5}\r\n": cmdAppend,
		"a append INBOX {5}\r\n": cmdAppend,
		"a UID APPEND x\r\n":     cmdAppend,
		"a STARTTLS\r\n":         cmdStartTLS,
		"a starttls\n":           cmdStartTLS,
		"a SELECT {5}\r\n":       cmdMailbox,
		"a uid move 1 x\r\n":     cmdMailbox,
		"a lıst \"\" *\r\n":      cmdMailbox, // strings.ToUpper: "LIST"
		"a ſearch ALL\r\n":       cmdSearch,
		"a SEARCH ALL\r\n":       cmdSearch,
		"a LOGIN {5}\r\n":        cmdOther,
		"APPEND\r\n":             cmdOther,
	} {
		if got := classify([]byte(line)); got != want {
			t.Errorf("%q: got %d, want %d", line, got, want)
		}
	}
	if got := appendArgAt([]byte("a1 APPEND {5}\r\n")); got != 10 {
		t.Errorf("appendArgAt: %d", got)
	}
}

// TestRecordSplitter: a ClientHello in one record comes out in records
// of at most 576 bytes, one per Read, with the same handshake bytes,
// cut so that crypto/tls's message buffer ends at the smallest
// allocation that holds it; the records after it pass unchanged.
func TestRecordSplitter(t *testing.T) {
	for _, msgLen := range []int{300, 571, 572, 1500, 1536, 1537, 1800, 5000} {
		msg := make([]byte, msgLen)
		for i := range msg {
			msg[i] = byte(i)
		}
		msg[0] = 1 // client_hello
		msg[1], msg[2], msg[3] = byte((msgLen-4)>>16), byte((msgLen-4)>>8), byte(msgLen-4)
		in := append([]byte{22, 3, 1, byte(msgLen >> 8), byte(msgLen)}, msg...)
		after := []byte{20, 3, 3, 0, 1, 1, 23, 3, 3, 0, 3, 'a', 'b', 'c'}
		in = append(in, after...)
		var s recordSplitter
		r := bytes.NewReader(in)
		var got []byte
		p := make([]byte, 576)
		for {
			n, done, err := s.read(r, p)
			must(t, err)
			if done {
				rest, _ := io.ReadAll(r)
				if out := append(p[:n:n], rest...); !bytes.Equal(out, after) {
					t.Fatalf("%d: after the handshake: %q", msgLen, out)
				}
				break
			}
			if p[0] != 22 || int(p[3])<<8|int(p[4]) != n-5 || n > 576 {
				t.Fatalf("%d: record % x... of %d bytes", msgLen, p[:5], n)
			}
			got = append(got, p[5:n]...)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("%d: handshake bytes changed", msgLen)
		}
		if s.hcap != sizeClass(msgLen) && msgLen <= 2048 {
			t.Errorf("%d: message buffer of %d bytes, want %d", msgLen, s.hcap, sizeClass(msgLen))
		}
	}
}

// TestGuardAnswer: untagged responses written while the guard waits for
// imapserver's answer to a literal (IDLE's last updates) are not it.
func TestGuardAnswer(t *testing.T) {
	var g guard
	if r := g.scan([]byte("a1 LOGIN {5}\r\n"), true, guardConfig{appendLimit: 100}); r.pass != 14 || g.mode != gAwait {
		t.Fatalf("scan: %+v, mode %d", r, g.mode)
	}
	g.answered([]byte("* 4 EXISTS\r\n"))
	if g.mode != gAwait {
		t.Fatalf("untagged response taken for the answer: mode %d", g.mode)
	}
	g.answered([]byte("+ Ready for literal data\r\n"))
	if g.mode != gLiteral || g.lit != 5 {
		t.Fatalf("continuation request: mode %d, literal %d", g.mode, g.lit)
	}
	g.scan([]byte("INBOX"), true, guardConfig{})
	if g.mode != gLine || !g.cont {
		t.Fatalf("after the literal: mode %d, cont %t", g.mode, g.cont)
	}
	g.scan([]byte("\r\n"), true, guardConfig{})
	g.scan([]byte("a2 LOGIN {5}\r\n"), true, guardConfig{})
	g.answered([]byte("a2 NO [TOOBIG] No\r\n"))
	if g.mode != gLine || g.cont {
		t.Fatalf("refused literal: mode %d, cont %t", g.mode, g.cont)
	}
}

// fakeConn stands for the network below a guarded conn in FuzzGuard.
type fakeConn struct{ net.Conn }

func (fakeConn) SetWriteDeadline(time.Time) error { return nil }
func (fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (fakeConn) Close() error                     { return nil }

// chunkReader returns data in reads of the sizes given, in turn.
type chunkReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(r.sizes) > 0 {
		n = min(n, int(r.sizes[r.i%len(r.sizes)])+1)
		r.i++
	}
	n = copy(p, r.data[:min(n, len(r.data))])
	r.data = r.data[n:]
	return n, nil
}

// FuzzGuard runs the guard over arbitrary input, read in arbitrary
// pieces into buffers of arbitrary sizes, with imapserver's answers to
// what it waits on chosen by the input too. What it passes on is the
// input less whole commands it refuses, in order; input with no literal
// header (no brace), no STARTTLS and no command the guard answers
// itself passes unchanged (but for what the end of the input cuts
// short).
func FuzzGuard(f *testing.F) {
	for _, s := range []string{
		"a1 LOGIN alice pw\r\na2 SELECT INBOX\r\na3 IDLE\r\nDONE\r\n",
		"a1 SELECT {4294967295}\r\na2 NOOP\r\n",
		"a1 LOGIN {5}\r\nalice {2}\r\npw\r\na2 NOOP\r\n",
		"a1 APPEND INBOX {5000+}\r\n" + strings.Repeat("x", 100) + "\r\na2 CREATE Injected\r\n",
		"a1 APPEND {5}\r\nINBOX (\\Seen) {10}\r\n0123456789\r\n",
		"a1 APPEND INBOX ~{3+}\r\nabc\r\n",
		"a1 SEARCH SUBJECT {3-}\r\nabc\r\n",
		"a1 STARTTLS\r\n\x16\x03\x01\x00\x05hello",
		"a1 NOOP\r\na2 SELECT {99999999999999999999}\r\na3 NOOP\r\n",
		"a1 SEARCH " + strings.Repeat("1,", 3000) + "1 SUBJECT {5000}\r\n",
		"a1 SEARCH " + strings.Repeat("(", 6000) + "\r\na2 NOOP\r\n",
		"a1 UID SEARCH " + strings.Repeat("NOT ", 3000) + "ALL\r\na2 NOOP\r\n",
		"a1 SEARCH " + strings.Repeat("NOT ", 70) + "SUBJECT {3+}\r\nabc\r\na2 NOOP\r\n",
		"a1 SEARCH BOGUS 1:3\r\na2 SEARCH CHARSET {10}\r\nISO-8859-1 SUBJECT {4}\r\nK\xf6ln\r\n",
		"a1 SEARCH CHARSET X-UNKNOWN BODY x\r\na2 SEARCH CHARSET KOI8-R BODY \"\xf0\"\r\n",
		"a1 SELECT &Jjo\r\na2 CREATE \"a\x00b\"\r\na3 NOOP\r\n",
		"a1 APPEND &AGE- {5+}\r\nhello\r\na2 NOOP\r\n",
		"a1 RENAME &Jjo {3}\r\na2 NOOP\r\n",
		"a1 \u017ftarttls\r\n\x16\x03\x01\x00\x05hello",
		"a1 l\u0131st \"\" {4}\r\n&Jjo\r\na2 NOOP\r\n",
	} {
		f.Add([]byte(s), []byte{7, 200, 3}, []byte{1, 0}, uint16(4096))
	}
	f.Fuzz(func(t *testing.T, data, sizes, answers []byte, bufSize uint16) {
		if bufSize < 16 || bufSize > 8192 {
			bufSize = 4096
		}
		srv := &Server{opts: Options{AppendLimit: 2000}}
		if bufSize%2 == 1 {
			// The guard does STARTTLS.
			srv.opts.TLSConfig = &tls.Config{}
		}
		c := &conn{Conn: fakeConn{}, srv: srv}
		r := &chunkReader{data: data, sizes: sizes}
		var replies bytes.Buffer
		var out []byte
		p := make([]byte, bufSize)
		for i := 0; ; i++ {
			if i > 4*len(data)+16 {
				t.Fatal("no progress")
			}
			n, err := c.guardedRead(r, &replies, p)
			out = append(out, p[:n]...)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					t.Fatal(err)
				}
				break
			}
			if c.g.mode == gAwait {
				a := []byte("a1 NO [CANNOT] No\r\n")
				if len(answers) > 0 {
					switch answers[i%len(answers)] % 4 {
					case 0:
						a = []byte("+ Ready for literal data\r\n")
					case 1:
						a = []byte("a1 OK Begin TLS negotiation now\r\n")
					case 2:
						a = []byte("* 1 EXISTS\r\n")
					}
				}
				c.wmu.Lock()
				c.g.answered(a)
				c.wmu.Unlock()
			}
		}
		// out is data less some parts, in order, unless a SEARCH was
		// converted, or replaced (RETURN (SAVE) too deep); commands
		// gathered whole have their synchronizing literals made
		// non-synchronizing.
		j := 0
		if bytes.Contains(bytes.ToUpper(data), []byte("CHARSET")) || bytes.Contains(bytes.ToUpper(data), []byte("SAVE")) {
			out, data = nil, nil
		}
		sub, subOut := bytes.ReplaceAll(data, []byte("+}"), []byte("}")), bytes.ReplaceAll(out, []byte("+}"), []byte("}"))
		for _, b := range subOut {
			for j < len(sub) && sub[j] != b {
				j++
			}
			if j == len(sub) {
				t.Fatalf("passed on bytes not in the input, or out of order: %q from %q", out, data)
			}
			j++
		}
		// Input without literals passes unchanged, unless the guard
		// answered a command itself or shortened a SEARCH RETURN (SAVE)
		// too deep; a line cut short by the end of input may not be
		// passed on.
		whole := data[:bytes.LastIndexByte(data, '\n')+1]
		answered := strings.Contains(replies.String(), " BAD ") || bytes.Contains(bytes.ToUpper(data), []byte("SAVE"))
		if !answered && !bytes.ContainsAny(data, "{}") && !bytes.Contains(bytes.ToUpper(data), []byte("STARTTLS")) && (!bytes.HasPrefix(data, out) || len(out) < len(whole)) {
			t.Fatalf("input without literals changed: %q from %q", out, data)
		}
		for _, l := range strings.SplitAfter(replies.String(), "\r\n") {
			if l != "" && (!strings.HasSuffix(l, "\r\n") || !strings.Contains(l, " [TOOBIG] ") && !strings.HasPrefix(l, "* BYE ") &&
				!strings.HasSuffix(l, " OK Begin TLS negotiation now\r\n") && l != "+ Ready for literal data\r\n" &&
				!strings.Contains(l, " NO [BADCHARSET") && !strings.Contains(l, " BAD ")) {
				t.Fatalf("reply %q", l)
			}
		}
	})
}

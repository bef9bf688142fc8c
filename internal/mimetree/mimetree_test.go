package mimetree

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

const mixed = "From: a@example.org\r\n" +
	"Subject: two parts\r\n" +
	"Content-Type: multipart/mixed; boundary=\"xx\"\r\n" +
	"\r\n" +
	"preamble\r\n" +
	"--xx\r\n" +
	"Content-Type: text/plain; charset=\"iso-8859-1\"; format=flowed\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"caf=E9\r\n" +
	"second line\r\n" +
	"--xx\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"Content-Disposition: attachment; filename=\"m.eml\"\r\n" +
	"Content-Language: en, de\r\n" +
	"\r\n" +
	"Subject: inner\r\n" +
	"Message-ID: <i@x>\r\n" +
	"\r\n" +
	"inner body\r\n" +
	"--xx--\r\n" +
	"epilogue\r\n"

func parse(t testing.TB, msg []byte) *Part {
	t.Helper()
	p, err := Parse(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func body(msg []byte, p *Part) string { return string(msg[p.BodyStart:p.End]) }

func TestParseMixed(t *testing.T) {
	msg := []byte(mixed)
	root := parse(t, msg)
	if !root.IsMultipart() || root.Subtype != "mixed" || len(root.Children) != 2 {
		t.Fatalf("root %+v", root)
	}
	if root.Envelope[0] != (Field{"Subject", "two parts"}) || root.Envelope[1].Key != "From" {
		// Envelope fields come in the order ENVELOPE lists them.
		t.Logf("envelope %+v", root.Envelope)
	}
	text := root.Children[0]
	if got := body(msg, text); got != "caf=E9\r\nsecond line" {
		t.Fatalf("part 1 body %q", got)
	}
	if text.Lines != 1 || text.Encoding != "quoted-printable" || text.Param("charset") != "iso-8859-1" || text.Param("format") != "flowed" {
		t.Fatalf("part 1 %+v", text)
	}
	if got := string(msg[text.HeaderStart:text.BodyStart]); !strings.HasPrefix(got, "Content-Type: text/plain") || !strings.HasSuffix(got, "printable\r\n\r\n") {
		t.Fatalf("part 1 header %q", got)
	}
	m := root.Children[1]
	if !m.IsMessage() || m.Disposition != "attachment" || m.DispositionParams[0] != (Param{"filename", "m.eml"}) ||
		!reflect.DeepEqual(m.Language, []string{"en", "de"}) {
		t.Fatalf("part 2 %+v", m)
	}
	inner := m.Children[0]
	if body(msg, inner) != "inner body" || inner.HeaderStart != m.BodyStart || inner.End != m.End {
		t.Fatalf("inner %+v body %q", inner, body(msg, inner))
	}
	if !reflect.DeepEqual(inner.Envelope, []Field{{"Subject", "inner"}, {"Message-Id", "<i@x>"}}) {
		t.Fatalf("inner envelope %+v", inner.Envelope)
	}
	if root.End != int64(len(msg)) || body(msg, root) != mixed[strings.Index(mixed, "preamble"):] {
		t.Fatalf("root body %q", body(msg, root))
	}
}

// A message with bare LF line endings has the structure of its CRLF
// form: offsets and sizes are those IMAP serves.
func TestParseBareLF(t *testing.T) {
	crlf := parse(t, []byte(mixed))
	lf := parse(t, []byte(strings.ReplaceAll(mixed, "\r\n", "\n")))
	if !reflect.DeepEqual(crlf, lf) {
		t.Fatalf("LF form differs:\n%+v\n%+v", lf, crlf)
	}
}

// depth returns the number of levels below p and the parts in all.
func depth(p *Part) (levels, parts int) {
	parts = 1
	for _, c := range p.Children {
		l, n := depth(c)
		levels = max(levels, l+1)
		parts += n
	}
	return levels, parts
}

func TestParseDeep(t *testing.T) {
	for _, n := range []int{10, 10_000, 100_000} {
		msg := Nested(n)
		root := parse(t, msg)
		levels, parts := depth(root)
		if want := min(n, MaxDepth); levels != want || parts != want+1 {
			t.Fatalf("%d levels: tree of %d levels, %d parts", n, levels, parts)
		}
		leaf := root
		for len(leaf.Children) > 0 {
			leaf = leaf.Children[0]
		}
		if n > MaxDepth {
			// The part at the cap is one leaf holding everything below it.
			if !leaf.Truncated || leaf.IsMultipart() || !strings.Contains(body(msg, leaf), "hello") {
				t.Fatalf("%d levels: leaf %+v", n, leaf)
			}
		} else if leaf.Type != "text" || body(msg, leaf) != "hello\r\n" {
			t.Fatalf("%d levels: leaf %+v %q", n, leaf, body(msg, leaf))
		}
		if root.End != int64(len(msg)) {
			t.Fatalf("root ends at %d of %d", root.End, len(msg))
		}
	}
}

func TestParseManyParts(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=x\r\n\r\n")
	for i := range 2 * MaxParts {
		fmt.Fprintf(&b, "--x\r\n\r\npart %d\r\n", i)
	}
	b.WriteString("--x--\r\n")
	msg := []byte(b.String())
	root := parse(t, msg)
	if _, parts := depth(root); parts != MaxParts {
		t.Fatalf("%d parts", parts)
	}
	// The last part takes what follows, up to the close delimiter.
	last := root.Children[len(root.Children)-1]
	if got := body(msg, last); !strings.HasPrefix(got, fmt.Sprintf("part %d\r\n", MaxParts-2)) || !strings.HasSuffix(got, fmt.Sprintf("part %d", 2*MaxParts-1)) {
		t.Fatalf("last part %.40q…", got)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, msg := range [][]byte{[]byte(mixed), Nested(200), []byte("no header at all")} {
		p := parse(t, msg)
		q, err := Unmarshal(p.Marshal())
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, p, q)
		}
	}
	if _, err := Unmarshal([]byte{encodingVersion, 0xff}); err == nil {
		t.Fatal("garbage decoded")
	}
}

// check verifies the invariants of a parsed tree over a message of n
// bytes (CRLF form).
func check(t *testing.T, p *Part, lo, hi int64) {
	if p.HeaderStart < lo || p.HeaderStart > p.BodyStart || p.BodyStart > p.End || p.End > hi {
		t.Fatalf("part [%d %d %d) outside [%d %d)", p.HeaderStart, p.BodyStart, p.End, lo, hi)
	}
	if p.Lines > p.End-p.BodyStart {
		t.Fatalf("%d lines in %d bytes", p.Lines, p.End-p.BodyStart)
	}
	prev := p.BodyStart
	for _, c := range p.Children {
		check(t, c, prev, p.End)
		prev = c.End
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(mixed))
	f.Add([]byte(strings.ReplaceAll(mixed, "\r\n", "\n")))
	f.Add(Nested(120))
	f.Add([]byte("Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: x\r\n\r\ny\r\n--d--\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"a b\"\r\n\r\n--a b \r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n\r\nx\r\n--a b--\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		n := int64(len(data) + bytes.Count(data, []byte("\n")))
		check(t, p, 0, n)
		q, err := Unmarshal(p.Marshal())
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip: %v", err)
		}
		Unmarshal(data)
	})
}

// lineScan is the baseline: the least a line-oriented parser does, a
// buffered read of every line.
func lineScan(msg []byte) int {
	r := bufio.NewReaderSize(bytes.NewReader(msg), 64<<10)
	n := 0
	for {
		_, err := r.ReadSlice('\n')
		if err == io.EOF {
			return n
		}
		n++
	}
}

// BenchmarkParseDeep parses the 100,000-level message (7.5 MB), and
// reads its lines as the baseline.
func BenchmarkParseDeep(b *testing.B) {
	msg := Nested(100_000)
	b.Run("baseline-linescan", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for range b.N {
			lineScan(msg)
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for range b.N {
			if _, err := Parse(bytes.NewReader(msg)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkParseLinear parses ordinary multipart mail of 1× and 10× the
// size (parts of 2 KB); the ns/B metric is flat if the cost is linear.
func BenchmarkParseLinear(b *testing.B) {
	for _, parts := range []int{100, 1000} {
		var s strings.Builder
		s.WriteString("Subject: x\r\nContent-Type: multipart/mixed; boundary=\"==sep==\"\r\n\r\n")
		for i := range parts {
			fmt.Fprintf(&s, "--==sep==\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=\"f%d.txt\"\r\n\r\n", i)
			for range 25 {
				s.WriteString("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n")
			}
		}
		s.WriteString("--==sep==--\r\n")
		msg := []byte(s.String())
		b.Run(fmt.Sprintf("x%d", parts/100), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for range b.N {
				if _, err := Parse(bytes.NewReader(msg)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(msg)), "ns/B")
		})
	}
}

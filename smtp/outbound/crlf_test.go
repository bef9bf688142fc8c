package outbound

import (
	"bytes"
	"testing"
)

func normalise(t testing.TB, chunks ...string) string {
	var out bytes.Buffer
	w := newCRLFWriter(&out)
	for _, c := range chunks {
		if _, err := w.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestCRLFWriter(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"a\r\nb\r\n"}, "a\r\nb\r\n"},
		{[]string{"a\nb\n"}, "a\r\nb\r\n"},
		{[]string{"a\rb\r"}, "a\r\nb\r\n"},
		{[]string{"a\r\r\nb"}, "a\r\n\r\nb"},
		{[]string{"a\n\rb"}, "a\r\n\r\nb"},
		// A CRLF split across writes stays one line end.
		{[]string{"a\r", "\nb"}, "a\r\nb"},
		{[]string{"a\r", "b"}, "a\r\nb"},
		{[]string{"\r"}, "\r\n"},
		{[]string{""}, ""},
	} {
		if got := normalise(t, tc.in...); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// hasBareCRorLF reports a CR not followed by LF or an LF not preceded by CR.
func hasBareCRorLF(b []byte) bool {
	for i, c := range b {
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			return true
		}
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

func FuzzCRLFWriter(f *testing.F) {
	f.Add([]byte("a\r\nb\nc\rd"), 3)
	f.Add([]byte("\r\r\n\n\r"), 1)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		if split < 0 || split > len(in) {
			split = len(in) / 2
		}
		out := normalise(t, string(in[:split]), string(in[split:]))
		if hasBareCRorLF([]byte(out)) {
			t.Fatalf("bare CR or LF in %q (from %q)", out, in)
		}
		// Content other than line ends is kept, in order.
		strip := func(b []byte) []byte {
			return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)
		}
		if !bytes.Equal(strip(in), strip([]byte(out))) {
			t.Fatalf("content changed: %q -> %q", in, out)
		}
		// Already-normal input passes unchanged.
		if !hasBareCRorLF(in) && out != string(in) {
			t.Fatalf("normal input changed: %q -> %q", in, out)
		}
	})
}

package smtp

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// refLineEndings is the plain statement of the rule the reader enforces.
func refLineEndings(b []byte) error {
	for i, c := range b {
		switch {
		case c == 0:
			return errNulInData
		case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			return errBareLineEnding
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			return errBareLineEnding
		}
	}
	return nil
}

// firstErr returns which violation comes first, for comparison with
// the reader, which reports only the first.
func readAll(t testing.TB, in []byte) ([]byte, error) {
	d := newDataReader(iotest.OneByteReader(bytes.NewReader(in)))
	out, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return out, d.err()
}

func TestDataReader(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", nil},
		{"a\r\nb\r\n", nil},
		{"a\nb\r\n", errBareLineEnding},
		{"a\rb\r\n", errBareLineEnding},
		{"a\r\n\r", errBareLineEnding},
		{"a\r\r\n", errBareLineEnding},
		{"\n", errBareLineEnding},
		{"a\x00\r\n", errNulInData},
		{"a\r\n\x00.\r\n", errNulInData},
	} {
		out, err := readAll(t, []byte(tc.in))
		if string(out) != tc.in {
			t.Errorf("%q: passed through as %q", tc.in, out)
		}
		if err != tc.want {
			t.Errorf("%q: got %v, want %v", tc.in, err, tc.want)
		}
	}
}

func FuzzDataReader(f *testing.F) {
	for _, s := range []string{"a\r\nb\r\n", "\n.\n", "\r\n.\r", "\r\n\x00.\r\n", "x\ry", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := readAll(t, in)
		if !bytes.Equal(out, in) {
			t.Fatalf("content changed")
		}
		if (err == nil) != (refLineEndings(in) == nil) {
			t.Fatalf("reader says %v, rule says %v", err, refLineEndings(in))
		}
	})
}

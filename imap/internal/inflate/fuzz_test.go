package inflate

import (
	"bytes"
	"compress/flate"
	"io"
	"os"
	"testing"
)

// FuzzInflate: on any input the decoder hands out the bytes Go's
// compress/flate does and fails where it fails; only when the data
// comes out differs.
func FuzzInflate(f *testing.F) {
	if b, err := os.ReadFile("testdata/append-partial.deflate"); err == nil {
		f.Add(b[:714+599])
	}
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write([]byte("a1 LOGIN alice secret\r\na2 NOOP\r\n"))
	w.Flush()
	f.Add(bytes.Clone(buf.Bytes()))
	w.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 1 << 20 // a bomb's output is not read to its end
		got, gerr := io.ReadAll(io.LimitReader(NewReader(bytes.NewReader(in)), max))
		want, werr := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(in)), max))
		if !bytes.Equal(got, want) {
			t.Fatalf("decoded %d bytes, compress/flate %d", len(got), len(want))
		}
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("error %v, compress/flate's %v", gerr, werr)
		}
	})
}

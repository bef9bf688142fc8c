package inflate

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

// appendFlushes are the compressed and plain sizes of the six pipelined
// APPEND commands (LITERAL+, a few KiB each) in testdata/append-partial:
// each deflated by zlib 1.2 (level 6, raw) and ended with
// Z_PARTIAL_FLUSH, as mbsync sends them under COMPRESS=DEFLATE.
var appendFlushes = []struct{ deflated, plain int }{
	{714, 3032}, {599, 3480}, {661, 3982}, {743, 4428}, {818, 5034}, {899, 5510},
}

// errWaiting stands for a peer that has sent all it will until it is
// answered.
var errWaiting = errors.New("read past what the peer has sent")

// sentSoFar reads the compressed stream only up to limit.
type sentSoFar struct {
	data  []byte
	off   int
	limit int
}

func (s *sentSoFar) Read(p []byte) (int, error) {
	if s.off >= s.limit {
		return 0, errWaiting
	}
	n := copy(p, s.data[s.off:s.limit])
	s.off += n
	return n, nil
}

// TestPartialFlush: every command ended with a partial flush is handed
// out whole from only the bytes sent up to its flush; reading one bit
// further (klauspost/compress's partial-block mode does) would wait for
// the next command, which the peer sends only once answered.
func TestPartialFlush(t *testing.T) {
	deflated, err := os.ReadFile("testdata/append-partial.deflate")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile("testdata/append-partial.txt")
	if err != nil {
		t.Fatal(err)
	}
	src := &sentSoFar{data: deflated}
	r := NewReader(src)
	for i, f := range appendFlushes {
		src.limit += f.deflated
		got := make([]byte, f.plain)
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if !bytes.Equal(got, plain[:f.plain]) {
			t.Fatalf("command %d decompressed to %q", i, got)
		}
		plain = plain[f.plain:]
	}
	if src.limit != len(deflated) || len(plain) != 0 {
		t.Fatalf("testdata sizes: %d of %d compressed, %d plain left", src.limit, len(deflated), len(plain))
	}
}

package smtp

import (
	"bytes"
	"io"
	"os"
)

// spoolMemLimit is how much of a message is kept in memory before the
// rest goes to a temporary file: enough for nearly all mail, while a
// connection sending the maximum size costs disk, not memory.
const spoolMemLimit = 1 << 20

// spool is the Body of a message being received. Its temporary file is
// unlinked as soon as it is created, so an interrupted transaction or a
// crash leaves nothing behind.
type spool struct {
	dir  string
	mem  []byte
	f    *os.File
	size int64
}

func newSpool(dir string) *spool { return &spool{dir: dir} }

// Write appends p, moving to a file past spoolMemLimit.
func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil && len(s.mem)+len(p) <= spoolMemLimit {
		s.mem = append(s.mem, p...)
		s.size += int64(len(p))
		return len(p), nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "mailagent-spool-*")
		if err != nil {
			return 0, err
		}
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return 0, err
		}
		if _, err := f.Write(s.mem); err != nil {
			f.Close()
			return 0, err
		}
		s.f = f
		s.mem = nil
	}
	n, err := s.f.Write(p)
	s.size += int64(n)
	return n, err
}

// Open implements Body.
func (s *spool) Open() (io.ReadCloser, error) {
	if s.f == nil {
		return io.NopCloser(bytes.NewReader(s.mem)), nil
	}
	return io.NopCloser(io.NewSectionReader(s.f, 0, s.size)), nil
}

// Len implements Body.
func (s *spool) Len() int64 { return s.size }

// head returns up to n bytes from the start of the message.
func (s *spool) head(n int) []byte {
	if s.f == nil {
		return s.mem[:min(n, len(s.mem))]
	}
	b := make([]byte, min(int64(n), s.size))
	k, _ := s.f.ReadAt(b, 0)
	return b[:k]
}

// Close releases the temporary file.
func (s *spool) Close() error {
	s.mem = nil
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

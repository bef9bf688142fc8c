package queue

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailagent/mailagent/internal/safeio"
)

// Spool layout under Options.Dir:
//
//	tmp/          files being written; emptied at start-up
//	msg/ID.eml    the message, exactly as received
//	msg/ID.json   its metadata; its presence is what makes ID queued
//
// Commit renames the message before the metadata and fsyncs msg/ once
// after both: a crash before that fsync returns was never acknowledged,
// and start-up deletes a message file without metadata and metadata
// without a message file.
const (
	tmpDir  = "tmp"
	msgDir  = "msg"
	bodyExt = ".eml"
	metaExt = ".json"
	idLen   = 24
)

type spool struct {
	dir string
}

func (s *spool) path(parts ...string) string {
	return filepath.Join(append([]string{s.dir}, parts...)...)
}

func (s *spool) bodyPath(id string) string { return s.path(msgDir, id+bodyExt) }
func (s *spool) metaPath(id string) string { return s.path(msgDir, id+metaExt) }

func (s *spool) init() error {
	for _, d := range []string{tmpDir, msgDir} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return err
		}
	}
	// Leftovers of writes a crash interrupted: never acknowledged.
	ents, err := os.ReadDir(s.path(tmpDir))
	if err != nil {
		return err
	}
	for _, e := range ents {
		os.Remove(s.path(tmpDir, e.Name()))
	}
	return safeio.SyncDir(s.path(tmpDir))
}

// newID returns a queue id: the arrival time in microseconds and random
// bits, in hex, so that ids sort roughly by arrival and never collide.
func newID(now time.Time) string {
	var b [12]byte
	us := uint64(now.UnixMicro())
	for i := 7; i >= 0; i-- {
		b[i] = byte(us)
		us >>= 8
	}
	rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}

// validID reports whether id has the form newID makes, which is also
// what keeps ids from naming paths outside the spool.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// createTemp creates a new file in tmp/.
func (s *spool) createTemp(prefix string) (*os.File, error) {
	return os.CreateTemp(s.path(tmpDir), prefix+"-*")
}

// writeMeta replaces id's metadata atomically and durably.
func (s *spool) writeMeta(m *meta) error {
	b, err := encodeMeta(m)
	if err != nil {
		return err
	}
	// The temporary file goes to tmp/, which init empties of what a
	// crash left behind.
	return safeio.WriteFile(s.metaPath(m.ID), b, 0o600, safeio.TempDir(s.path(tmpDir)))
}

// readMeta loads id's metadata.
func (s *spool) readMeta(id string) (*meta, error) {
	f, err := os.Open(s.metaPath(id))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetaSize+1))
	if err != nil {
		return nil, err
	}
	m, err := decodeMeta(b)
	if err != nil {
		return nil, err
	}
	if m.ID != id {
		return nil, fmt.Errorf("%w: id %q in file of %q", errCorrupt, m.ID, id)
	}
	return m, nil
}

// remove deletes a message, metadata first so that a crash in between
// leaves an orphan body that start-up removes, never a message without
// content.
func (s *spool) remove(id string) error {
	err := os.Remove(s.metaPath(id))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Remove(s.bodyPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// scan calls fn for every queued message id. With clean, used only
// before the queue accepts messages, it also removes the orphans a crash
// in Commit or remove left behind. It reads the directory in batches so that a large spool does not need
// its whole listing in memory.
func (s *spool) scan(clean bool, fn func(id string) error) error {
	d, err := os.Open(s.path(msgDir))
	if err != nil {
		return err
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(1024)
		for _, n := range names {
			id, isMeta := strings.CutSuffix(n, metaExt)
			if !isMeta {
				bid, ok := strings.CutSuffix(n, bodyExt)
				if clean && ok && validID(bid) {
					if _, err := os.Stat(s.metaPath(bid)); errors.Is(err, os.ErrNotExist) {
						os.Remove(s.bodyPath(bid))
					}
				}
				continue
			}
			if !validID(id) {
				continue
			}
			if _, err := os.Stat(s.bodyPath(id)); errors.Is(err, os.ErrNotExist) {
				if clean {
					os.Remove(s.metaPath(id))
				}
				continue
			}
			if err := fn(id); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

package maildir

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Defaults of the per-user folder limits (Options.MaxFolders,
// Options.MaxFolderDepth). 16 levels is Dovecot's
// MAILBOX_MAX_HIERARCHY_LEVELS.
const (
	DefaultMaxFolders     = 10000
	DefaultMaxFolderDepth = 16
)

// maxFolders is the cap on one Maildir's folders, INBOX aside; 0 means
// none.
func (s *Store) maxFolders() int {
	switch n := s.opts.MaxFolders; {
	case n == 0:
		return DefaultMaxFolders
	case n < 0:
		return 0
	default:
		return n
	}
}

// checkDepth refuses a new folder name with more hierarchy levels than
// Options.MaxFolderDepth allows.
func (s *Store) checkDepth(name string) error {
	limit := s.opts.MaxFolderDepth
	switch {
	case limit == 0:
		limit = DefaultMaxFolderDepth
	case limit < 0:
		return nil
	}
	if strings.Count(name, string(Delimiter))+1 > limit {
		return fmt.Errorf("%w: more than %d levels", ErrFolderTooDeep, limit)
	}
	return nil
}

// folderCounter keeps the number of folder directories of one Maildir,
// recounted only when the root directory's stamp shows a change this
// process did not make itself (another process, or a deletion), so a
// CREATE does not list the directory each time. A change by another
// process landing within the same mtime tick as one of ours is seen at
// the next change: the count may lag by that much, which a limit of
// thousands tolerates.
type folderCounter struct {
	mu      sync.Mutex // held across a check and the creation it allows
	n       int
	stamp   fileStamp
	counted bool
}

// countFolders counts the folder directories in root, INBOX aside, as
// folderNames lists them (the directory entry's type stands in for a stat
// unless it is a link or unknown).
func countFolders(root string) (int, error) {
	d, err := os.Open(root)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if e.Name() == trashedDir {
			continue
		}
		if _, ok := folderFromDirName(e.Name()); !ok {
			continue
		}
		if !e.Type().IsDir() {
			if e.Type().IsRegular() {
				continue
			}
			if st, err := os.Stat(filepath.Join(root, e.Name())); err != nil || !st.IsDir() {
				continue
			}
		}
		n++
	}
	return n, nil
}

// withFolderRoom runs create, which makes one new folder in root, if the
// Maildir has fewer folders than Options.MaxFolders; else it returns
// ErrTooManyFolders. The count is the one held by the Maildir's shared
// state when it is open (c non-nil), else the directory is counted.
func (s *Store) withFolderRoom(c *folderCounter, root string, create func() error) error {
	limit := s.maxFolders()
	if limit == 0 {
		return create()
	}
	if c == nil {
		n, err := countFolders(root)
		if err != nil {
			return err
		}
		if n >= limit {
			return fmt.Errorf("%w: %d", ErrTooManyFolders, limit)
		}
		return create()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := statStamp(root)
	if !ok || !c.counted || st != c.stamp {
		n, err := countFolders(root)
		if err != nil {
			return err
		}
		c.n, c.stamp, c.counted = n, st, ok
	}
	if c.n >= limit {
		return fmt.Errorf("%w: %d", ErrTooManyFolders, limit)
	}
	if err := create(); err != nil {
		c.counted = false
		return err
	}
	c.n++
	c.stamp, c.counted = statStamp(root)
	return nil
}

// counterOf returns the folder counter of the open Maildir at root, nil
// when none is open.
func (s *Store) counterOf(root string) *folderCounter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[root]; u != nil {
		return &u.count
	}
	return nil
}

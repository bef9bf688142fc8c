// Package safeio writes files that must survive a crash: the content goes
// to a temporary file in the same file system, which is fsynced and closed,
// then renamed (or linked) to its name, and the directory is fsynced so
// that the new name is on disk too. A reader sees the old content or the
// new, never a mix, and every step's error is returned: a write that
// reports success is durable.
//
// Every package of mailagent that keeps state on disk outside a Maildir
// message (DKIM keys, generated certificates, the queue's metadata, the
// Maildir's uidlist, index and subscriptions, ManageSieve scripts) writes
// it through here, so the sequence is right in one place.
package safeio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Option changes how WriteFile writes.
type Option func(*options)

type options struct {
	tempDir   string
	noReplace bool
	noSync    bool
	prepare   func(*os.File) error
}

// TempDir creates the temporary file in dir rather than beside the
// destination, for a caller that empties dir of leftovers after a crash.
// dir must be on the destination's file system.
func TempDir(dir string) Option { return func(o *options) { o.tempDir = dir } }

// NoReplace makes WriteFile fail with an error matching fs.ErrExist when
// the destination exists, even when it is created concurrently: the file is
// put in place with a hard link, which never replaces. On a file system
// without hard links it falls back to a check and a rename.
func NoReplace() Option { return func(o *options) { o.noReplace = true } }

// NoSync skips both fsyncs and keeps only the atomic replacement, for a
// file that is rebuilt from others when lost (a cache).
func NoSync() Option { return func(o *options) { o.noSync = true } }

// Prepare runs fn on the temporary file before the content is written: to
// set an owner, say. An error abandons the write.
func Prepare(fn func(*os.File) error) Option { return func(o *options) { o.prepare = fn } }

// WriteFile writes data to path with permissions perm, durably and
// atomically (see the package comment). On error the temporary file is
// removed and path is left as it was.
func WriteFile(path string, data []byte, perm os.FileMode, opts ...Option) (err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dir := filepath.Dir(path)
	if o.tempDir == "" {
		o.tempDir = dir
	}
	if o.noReplace {
		if _, err := os.Lstat(path); err == nil {
			return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
		}
	}
	f, err := os.CreateTemp(o.tempDir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		// After a link, the temporary name is removed either way; after
		// a rename it no longer exists.
		if err != nil || o.noReplace {
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if o.prepare != nil {
		if err = o.prepare(f); err != nil {
			return err
		}
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if !o.noSync {
		if err = f.Sync(); err != nil {
			return err
		}
	}
	err = f.Close()
	f = nil
	if err != nil {
		return err
	}
	if err = place(tmp, path, o.noReplace); err != nil {
		return err
	}
	if o.noSync {
		return nil
	}
	return SyncDir(dir)
}

// place names tmp path: a rename, or under NoReplace a hard link.
func place(tmp, path string, noReplace bool) error {
	if !noReplace {
		return os.Rename(tmp, path)
	}
	err := os.Link(tmp, path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	// No hard links here (some FUSE and network file systems): rename,
	// after the check WriteFile made before writing.
	if _, serr := os.Lstat(path); serr == nil {
		return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	}
	return os.Rename(tmp, path)
}

// SyncDir fsyncs the directory dir, so that names created, renamed or
// removed in it are on disk. Every error is returned, the close's too.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

package maildir

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ctimeOf returns a file's inode change time, which unlike the mtime
// cannot be set back by a writer; the zero time when unknown.
func ctimeOf(st fs.FileInfo) time.Time {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return time.Unix(s.Ctim.Sec, s.Ctim.Nsec)
	}
	return st.ModTime()
}

// inodeOf returns the file's inode number, 0 when unknown.
func inodeOf(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}

// chownLike gives p the owner of the directory it is in when this process
// runs as root and that directory belongs to a mail user: files and
// directories mailagent creates must stay usable by Dovecot running as
// that user. Elsewhere it does nothing.
func chownLike(p string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(filepath.Dir(p))
	if err != nil {
		return nil
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok && s.Uid != 0 {
		return os.Lchown(p, int(s.Uid), int(s.Gid))
	}
	return nil
}

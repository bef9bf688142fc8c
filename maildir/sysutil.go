package maildir

import (
	"io/fs"
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

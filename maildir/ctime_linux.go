package maildir

import (
	"io/fs"
	"syscall"
	"time"
)

// ctimeOf returns a file's inode change time, which unlike the mtime
// cannot be set back by a writer.
func ctimeOf(st fs.FileInfo) time.Time {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return time.Unix(s.Ctim.Sec, s.Ctim.Nsec)
	}
	return st.ModTime()
}

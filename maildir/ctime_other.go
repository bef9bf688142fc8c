//go:build !linux

package maildir

import (
	"io/fs"
	"time"
)

// ctimeOf returns the mtime where the inode change time is not portable.
func ctimeOf(st fs.FileInfo) time.Time { return st.ModTime() }

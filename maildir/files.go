package maildir

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mailagent/mailagent/internal/safeio"
)

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
	if uid, gid, ok := mailOwner(filepath.Dir(p)); ok {
		return os.Lchown(p, uid, gid)
	}
	return nil
}

// chownFileLike gives the new file f in dir the owner of dir, as
// chownLike does for a path.
func chownFileLike(f *os.File, dir string) error {
	if uid, gid, ok := mailOwner(dir); ok {
		return f.Chown(uid, gid)
	}
	return nil
}

// mailOwner returns the owner of dir when this process runs as root and
// dir belongs to another user; ok is false otherwise.
func mailOwner(dir string) (uid, gid int, ok bool) {
	if os.Geteuid() != 0 {
		return 0, 0, false
	}
	st, err := os.Stat(dir)
	if err != nil {
		return 0, 0, false
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok && s.Uid != 0 {
		return int(s.Uid), int(s.Gid), true
	}
	return 0, 0, false
}

// inheritOwner gives the new file f, about to replace path, the owner and
// mode of the file it replaces (or the owner of its directory), so that a
// Maildir shared with Dovecot running as the mail user stays readable by
// it even when this process runs as root.
func inheritOwner(f *os.File, path string) error {
	st, err := os.Stat(path)
	if err == nil {
		if err := f.Chmod(st.Mode().Perm()); err != nil {
			return err
		}
	} else if st, err = os.Stat(filepath.Dir(path)); err != nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return nil
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok && s.Uid != 0 {
		return f.Chown(int(s.Uid), int(s.Gid))
	}
	return nil
}

// writeFileAtomic replaces path with data through a temporary file in the
// same directory and a rename, so readers see the old or the new content,
// never a mix; durable also fsyncs the file and the directory. The file
// keeps the mode and owner of the one it replaces.
func writeFileAtomic(path string, data []byte, durable bool) error {
	opts := []safeio.Option{safeio.Prepare(func(f *os.File) error { return inheritOwner(f, path) })}
	if !durable {
		opts = append(opts, safeio.NoSync())
	}
	return safeio.WriteFile(path, data, 0o600, opts...)
}

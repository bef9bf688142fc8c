package maildir

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
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
// never a mix; durable also fsyncs the file and the directory.
func writeFileAtomic(path string, data []byte, durable bool) error {
	tmp := fmt.Sprintf("%s.%d.%d.tmp", path, os.Getpid(), time.Now().UnixNano())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = inheritOwner(f, path)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if durable {
		return fsyncDir(filepath.Dir(path))
	}
	return nil
}

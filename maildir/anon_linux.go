package maildir

import (
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// procFD reports whether /proc/self/fd is there to name an unnamed file:
// linkat(2) through it needs no privilege, unlike AT_EMPTY_PATH.
var procFD = sync.OnceValue(func() bool {
	st, err := os.Stat("/proc/self/fd")
	return err == nil && st.IsDir()
})

// openAnon creates an unnamed regular file in dir (O_TMPFILE): it has no
// directory entry, so no reader sees it until linkAnon gives it a name,
// and the kernel frees it if the process dies first. errAnonUnsupported
// (wrapped) means the file system or kernel cannot.
func openAnon(dir string) (*os.File, error) {
	if !procFD() {
		return nil, errAnonUnsupported
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if anonUnsupported(err) {
			return nil, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: errors.Join(errAnonUnsupported, err)}
		}
		return nil, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir+"/(unnamed)"), nil
}

// anonUnsupported reports whether err from an O_TMPFILE open means "not
// here" rather than a real failure: EOPNOTSUPP from file systems without
// it, EISDIR from kernels older than 3.11 (which see only O_DIRECTORY),
// EINVAL from some others.
func anonUnsupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL)
}

func anonPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// linkAnon gives the unnamed file f the name dst (failing if it exists).
func linkAnon(f *os.File, dst string) error {
	if err := unix.Linkat(unix.AT_FDCWD, anonPath(f), unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &os.LinkError{Op: "linkat", Old: f.Name(), New: dst, Err: err}
	}
	return nil
}

// chtimesAnon sets the unnamed file's atime and mtime to t.
func chtimesAnon(f *os.File, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, anonPath(f), []unix.Timespec{ts, ts}, 0); err != nil {
		return &os.PathError{Op: "utimensat", Path: f.Name(), Err: err}
	}
	return nil
}

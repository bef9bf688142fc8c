package managesieve

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mailagent/mailagent/internal/safeio"
)

// Scripts are kept where Pigeonhole keeps them, so that an installation
// moves either way: HOME/sieve/NAME.sieve, and the active one named by the
// symbolic link HOME/.dovecot.sieve -> sieve/NAME.sieve.
const (
	scriptDir  = "sieve"
	activeLink = ".dovecot.sieve"
	suffix     = ".sieve"
)

var (
	errNoScript = errors.New("no such script")
	errExists   = errors.New("script exists")
	errActive   = errors.New("script is active")
	errBadName  = errors.New("bad script name")
)

// storage is one user's scripts.
type storage struct{ home string }

func (s storage) dir() string { return filepath.Join(s.home, scriptDir) }

// path is the file of the script name. Every name a client gives goes
// through here, and one that validName refuses (a "/", "..", a leading
// dot, a control character) names no script: it can reach no file
// outside the user's sieve/ directory, another user's script least of all.
func (s storage) path(name string) (string, bool) {
	if !validName(name) {
		return "", false
	}
	return filepath.Join(s.dir(), name+suffix), true
}

func (s storage) exists(name string) bool {
	p, ok := s.path(name)
	if !ok {
		return false
	}
	_, err := os.Lstat(p)
	return err == nil
}

func (s storage) read(name string) ([]byte, error) {
	p, ok := s.path(name)
	if !ok {
		return nil, errNoScript
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoScript
	}
	return b, err
}

// validName reports whether name may name a script (RFC 5804 section
// 1.6: UTF-8 without controls; no "/" as it names a file, no leading "."
// so that it cannot be taken for Pigeonhole's own files).
func validName(name string) bool {
	if name == "" || len(name) > 255 || !utf8.ValidString(name) || strings.HasPrefix(name, ".") || strings.ContainsRune(name, '/') {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return false
		}
	}
	return true
}

// list returns the scripts sorted by name, and the active one.
func (s storage) list() (names []string, active string, err error) {
	ents, err := os.ReadDir(s.dir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), suffix); ok && e.Type().IsRegular() && validName(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, s.active(), nil
}

// active is the name of the active script, "" for none.
func (s storage) active() string {
	t, err := os.Readlink(filepath.Join(s.home, activeLink))
	if err != nil {
		return ""
	}
	dir, file := filepath.Split(filepath.Clean(t))
	n, ok := strings.CutSuffix(file, suffix)
	if !ok || filepath.Clean(dir) != scriptDir && filepath.Clean(dir) != s.dir() {
		return ""
	}
	return n
}

// usage is the number of scripts and their bytes, not counting name.
func (s storage) usage(except string) (n int, bytes int64, err error) {
	names, _, err := s.list()
	if err != nil {
		return 0, 0, err
	}
	for _, name := range names {
		if name == except {
			continue
		}
		p, _ := s.path(name) // list gives valid names only
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		n++
		bytes += fi.Size()
	}
	return n, bytes, nil
}

// put writes a script durably: a temporary file, fsynced, renamed over
// the name, then the directory fsynced.
func (s storage) put(name string, body []byte) error {
	p, ok := s.path(name)
	if !ok {
		return errBadName
	}
	if err := os.MkdirAll(s.dir(), 0o700); err != nil {
		return err
	}
	return safeio.WriteFile(p, body, 0o600)
}

// setActive points the link at name, or removes it for "".
func (s storage) setActive(name string) error {
	link := filepath.Join(s.home, activeLink)
	if name == "" {
		err := os.Remove(link)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return safeio.SyncDir(s.home)
	}
	if !s.exists(name) {
		return errNoScript
	}
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&fs.ModeSymlink == 0 {
		// A regular .dovecot.sieve (a script from before ManageSieve) is
		// kept under a name of its own, as Pigeonhole does.
		if err := os.Rename(link, filepath.Join(s.home, activeLink+".bak")); err != nil {
			return err
		}
	}
	tmp := fmt.Sprintf("%s.tmp%d", link, os.Getpid())
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join(scriptDir, name+suffix), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return safeio.SyncDir(s.home)
}

func (s storage) remove(name string) error {
	if !s.exists(name) {
		return errNoScript
	}
	if s.active() == name {
		return errActive
	}
	p, _ := s.path(name) // exists checked the name
	if err := os.Remove(p); err != nil {
		return err
	}
	return safeio.SyncDir(s.dir())
}

func (s storage) rename(from, to string) error {
	if !s.exists(from) {
		return errNoScript
	}
	to2, ok := s.path(to)
	if !ok {
		return errBadName
	}
	if s.exists(to) {
		return errExists
	}
	wasActive := s.active() == from
	from2, _ := s.path(from) // exists checked the name
	if err := os.Rename(from2, to2); err != nil {
		return err
	}
	if err := safeio.SyncDir(s.dir()); err != nil {
		return err
	}
	if wasActive {
		return s.setActive(to)
	}
	return nil
}

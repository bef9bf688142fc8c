package maildir

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Delimiter is the hierarchy delimiter of folder names, the same as
// Dovecot's Maildir++ separator: folder "Lists.go" is a child of "Lists".
const Delimiter = '.'

// Options configure a Store. The zero value is usable.
type Options struct {
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Hostname goes into unique file names; default os.Hostname().
	Hostname string
	// SpecialFolders are created and subscribed on the first Open of a
	// Maildir and reported with their special-use attribute. nil means
	// DefaultSpecialFolders(); an empty non-nil slice means none.
	SpecialFolders []SpecialFolder
	// TmpMaxAge is the age after which files left in tmp/ are removed;
	// default 36 hours, as the Maildir specification suggests.
	TmpMaxAge time.Duration
	// PollInterval is how often watched folders are checked for changes
	// made by other processes or other nodes sharing the Maildir tree;
	// default 1s. The check stats new/, cur/, dovecot-uidlist and
	// dovecot-keywords and lists the folder only when one of them changed,
	// so it costs the same on a folder of 100,000 messages as on an empty
	// one.
	PollInterval time.Duration
	// NoWatcher turns off the file-system watcher (inotify, kqueue) that
	// tells watched folders of changes at once, leaving the poll alone.
	// A watcher sees only the changes made through its own kernel: on
	// NFS another node's deliveries reach IDLE through the poll anyway,
	// and this setting lets a local file system be served the same way
	// (and tests exercise the poll).
	NoWatcher bool
	// MaxMessageSize refuses larger deliveries and appends with ErrTooLarge;
	// 0 means no limit.
	MaxMessageSize int64
	// NoGroupCommit makes every delivery fsync its directory itself rather
	// than sharing the fsync with concurrent deliveries. The guarantee is
	// the same either way; this exists to measure the difference.
	NoGroupCommit bool
	// HeldFieldsMemory bounds, in bytes, the decoded header fields the
	// Store keeps in memory for the folders of its open Maildirs
	// (Folder.DecodedFields: IMAP's SORT and THREAD keys, a few hundred
	// bytes per message); 0 means 256 MiB, a negative value keeps none.
	HeldFieldsMemory int64
	// MaxFolders bounds the folders of one Maildir, INBOX aside: a
	// CreateFolder, or a delivery with CreateFolder, past it fails with
	// ErrTooManyFolders. 0 means DefaultMaxFolders (10,000), a negative
	// value no limit. Folders made by other means (mkdir, Dovecot) count
	// but are not stopped.
	MaxFolders int
	// MaxFolderDepth bounds the hierarchy levels of a folder created or
	// renamed ("a.b.c" has 3): deeper fails with ErrFolderTooDeep. 0 means
	// DefaultMaxFolderDepth (16, as Dovecot), a negative value no limit.
	MaxFolderDepth int

	// now returns the current time, time.Now if nil; the package's
	// tests set it.
	now func() time.Time
}

// SpecialFolder names a folder with an RFC 6154 special use.
type SpecialFolder struct {
	Name string
	Use  SpecialUse
}

// SpecialUse is an RFC 6154 mailbox attribute such as `\Sent`.
type SpecialUse string

// The special uses of RFC 6154 that Maildir folders are given.
const (
	SpecialAll     SpecialUse = `\All`
	SpecialArchive SpecialUse = `\Archive`
	SpecialDrafts  SpecialUse = `\Drafts`
	SpecialFlagged SpecialUse = `\Flagged`
	SpecialJunk    SpecialUse = `\Junk`
	SpecialSent    SpecialUse = `\Sent`
	SpecialTrash   SpecialUse = `\Trash`
)

// DefaultSpecialFolders returns the folders Dovecot's default configuration
// declares: Drafts, Junk, Trash, Sent and Archive.
func DefaultSpecialFolders() []SpecialFolder {
	return []SpecialFolder{
		{"Drafts", SpecialDrafts},
		{"Junk", SpecialJunk},
		{"Trash", SpecialTrash},
		{"Sent", SpecialSent},
		{"Archive", SpecialArchive},
	}
}

// Store is the Maildir storage of one base directory. It is safe for
// concurrent use; one Store should serve the whole process so that
// handles to the same Maildir share state and notifications.
type Store struct {
	base    string
	opts    Options
	log     *slog.Logger
	pid     int
	host    string // sanitized, as in file names
	names   *namer
	syncers syncers
	bufs    sync.Pool // *[]byte copy buffers for writing messages
	// anon says whether deliveries use unnamed files (anonOn...), learnt
	// from the first attempt and kept for the Store's life.
	anon atomic.Int32
	// anonHeld counts unnamed files staged and not yet linked or
	// aborted: each holds a descriptor (see maxAnonHeld).
	anonHeld atomic.Int64
	// held counts the bytes of decoded values the open folders keep
	// (DecodedFields), bounded by Options.HeldFieldsMemory.
	held atomic.Int64

	mu       sync.Mutex
	users    map[string]*userState // by Maildir path
	closed   bool
	lastUIDV uint32 // the last UIDVALIDITY given to a new folder
	// bootID identifies the running kernel's boot ("" where unknown):
	// flag changes are logged without an fsync only under a durable
	// mark naming it (see flagdurability.go).
	bootID string
}

// New returns a Store rooted at base (created if missing).
func New(base string, opts *Options) (*Store, error) {
	s := &Store{}
	if opts != nil {
		s.opts = *opts
	}
	abs, err := filepath.Abs(base)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, err
	}
	s.base = abs
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opts.Hostname == "" {
		s.opts.Hostname, _ = os.Hostname()
	}
	if s.opts.SpecialFolders == nil {
		s.opts.SpecialFolders = DefaultSpecialFolders()
	}
	if s.opts.TmpMaxAge <= 0 {
		s.opts.TmpMaxAge = 36 * time.Hour
	}
	if s.opts.PollInterval <= 0 {
		s.opts.PollInterval = time.Second
	}
	if s.opts.now == nil {
		s.opts.now = time.Now
	}
	s.pid = os.Getpid()
	s.bootID = currentBootID()
	s.host = sanitizeHost(s.opts.Hostname)
	s.names = newNamer(s.pid, s.opts.Hostname)
	s.users = make(map[string]*userState)
	s.bufs.New = func() any { b := make([]byte, 64<<10); return &b }
	return s, nil
}

// UserPath returns the default Maildir path of local@domain:
// <base>/<domain>/<local>/Maildir, the seed's mail_location. Parts that
// could escape base are refused with a *NameError.
func (s *Store) UserPath(domain, local string) (string, error) {
	for _, p := range []string{domain, local} {
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, "/\\\x00") {
			return "", &NameError{Name: p, Reason: "not usable as a directory name"}
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f {
				return "", &NameError{Name: p, Reason: "control character"}
			}
		}
	}
	return filepath.Join(s.base, domain, local, "Maildir"), nil
}

// resolve makes path absolute (relative ones are under base) and refuses
// relative paths that climb out of base.
func (s *Store) resolve(path string) (string, error) {
	if path == "" {
		return "", &NameError{Name: path, Reason: "empty Maildir path"}
	}
	if filepath.IsAbs(path) {
		return filepath.Clean(path), nil
	}
	p := filepath.Join(s.base, path)
	if rel, err := filepath.Rel(s.base, p); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", &NameError{Name: path, Reason: "Maildir path leaves the base directory"}
	}
	return p, nil
}

// Open opens (creating if needed) the Maildir at path, which is absolute
// or relative to the Store's base. Relative paths that leave base are
// refused. Close the Maildir when done.
func (s *Store) Open(ctx context.Context, path string) (*Maildir, error) {
	p, err := s.resolve(path)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	u := s.users[p]
	if u == nil {
		u = newUserState(s, p)
		s.users[p] = u
	}
	u.refs++
	s.mu.Unlock()
	m := &Maildir{store: s, u: u, path: p}
	u.initOnce.Do(func() { u.initErr = u.init(ctx) })
	if u.initErr != nil {
		m.Close()
		return nil, u.initErr
	}
	return m, nil
}

// release drops one reference to u and forgets it when unused.
func (s *Store) release(u *userState) {
	s.mu.Lock()
	u.refs--
	last := u.refs == 0
	if last && s.users[u.path] == u {
		delete(s.users, u.path)
	}
	s.mu.Unlock()
	if last {
		u.shutdown()
	}
}

// lookupFolder returns the in-memory state of a folder directory when a
// Maildir holding it is open, so deliveries can notify its watchers.
func (s *Store) lookupFolder(maildir, dir string) *folderState {
	s.mu.Lock()
	u := s.users[maildir]
	s.mu.Unlock()
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.folders[dir]
}

// Close stops background work (polling, fsnotify) and refuses new Opens.
// Maildirs still open keep working but their watches end: every channel
// Watch returned is closed, no event is sent after Close returns, no
// goroutine of theirs is left, and new Watch calls fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	users := make([]*userState, 0, len(s.users))
	for _, u := range s.users {
		users = append(users, u)
	}
	s.mu.Unlock()
	for _, u := range users {
		u.shutdown()
	}
	return nil
}

// newUIDValidity returns a UIDVALIDITY for a new (or renumbered) folder:
// the time, as Dovecot uses, but always above the last one given, so that
// a folder deleted and created again within a second does not reuse it
// (RFC 9051 §2.3.1.1).
func (s *Store) newUIDValidity() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := max(uint32(s.opts.now().Unix()), s.lastUIDV+1)
	s.lastUIDV = v
	return v
}

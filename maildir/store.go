package maildir

import (
	"context"
	"io"
	"log/slog"
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
	// made by other processes (cheaply, by directory mtimes); default 1s.
	PollInterval time.Duration
	// MaxMessageSize refuses larger deliveries and appends with ErrTooLarge;
	// 0 means no limit.
	MaxMessageSize int64
	// NoGroupCommit makes every delivery fsync its directory itself rather
	// than sharing the fsync with concurrent deliveries. The guarantee is
	// the same either way; this exists to measure the difference.
	NoGroupCommit bool
	// Now returns the current time; default time.Now.
	Now func() time.Time
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
	base string
	opts Options
}

// New returns a Store rooted at base (created if missing).
func New(base string, opts *Options) (*Store, error) {
	s := &Store{base: base}
	if opts != nil {
		s.opts = *opts
	}
	return s, errNotImplemented
}

// UserPath returns the default Maildir path of local@domain:
// <base>/<domain>/<local>/Maildir, the seed's mail_location. Both parts
// are refused with a *NameError if they could escape base.
func (s *Store) UserPath(domain, local string) (string, error) {
	return "", errNotImplemented
}

// Open opens (creating if needed) the Maildir at path, which is absolute
// or relative to the Store's base. Relative paths that leave base are
// refused. Close the Maildir when done.
func (s *Store) Open(ctx context.Context, path string) (*Maildir, error) {
	return nil, errNotImplemented
}

// DeliverOptions tune one delivery. The zero value delivers into new/ with
// no flags, the current time, and the quota recorded in maildirsize.
type DeliverOptions struct {
	// Flags are IMAP flags and keywords for the message; a delivery with
	// flags goes to cur/ as Dovecot's LDA does.
	Flags []string
	// Date is the internal date (file mtime); zero means now.
	Date time.Time
	// Quota, when non-nil, is the user's limit (from the directory); it
	// is written to maildirsize when it differs from what is recorded.
	Quota *Quota
	// CreateFolder creates a missing target folder rather than failing
	// with ErrNoFolder.
	CreateFolder bool
}

// Delivered describes a message that Deliver made durable.
type Delivered struct {
	// Folder is the folder delivered to ("INBOX" for the root).
	Folder string
	// Key is the message's unique base name (without ":2," and flags).
	Key string
	// Size is the size in bytes; VSize the size with CRLF line endings.
	Size, VSize int64
}

// Deliver stores the message read from r into folder of the Maildir at
// path (absolute or relative to base), as an MDA does: written to tmp/,
// fsynced, renamed into new/ (cur/ with flags), and the directory fsynced
// (shared with concurrent deliveries, see Options.NoGroupCommit). When
// Deliver returns nil the message survives a crash; when it returns an
// error nothing of it is visible. Over quota it returns a *QuotaError.
func (s *Store) Deliver(ctx context.Context, path, folder string, r io.Reader, opts *DeliverOptions) (*Delivered, error) {
	return nil, errNotImplemented
}

// CleanTmp removes files older than Options.TmpMaxAge from the tmp/
// directories of every folder of the Maildir at path. Open runs it too.
func (s *Store) CleanTmp(ctx context.Context, path string) error {
	return errNotImplemented
}

// Close stops background work (polling, fsnotify). Maildirs still open
// keep working for file operations but no longer get notifications.
func (s *Store) Close() error {
	return nil
}

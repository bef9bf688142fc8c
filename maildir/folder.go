package maildir

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// System flags as IMAP spells them. Any other flag is a keyword.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// Message is one message as listed from the folder's index, without
// opening its file.
type Message struct {
	// UID is the message's IMAP UID, from dovecot-uidlist.
	UID uint32
	// Flags holds system flags (FlagSeen...) then keywords, sorted.
	Flags []string
	// Size is the file's size in bytes (",S=" in the name).
	Size int64
	// VSize is the size with CRLF line endings (",W=", Dovecot's virtual
	// size): IMAP's RFC822.SIZE and POP3's LIST/UIDL size.
	VSize int64
	// InternalDate is the file's mtime, IMAP's INTERNALDATE.
	InternalDate time.Time
	// Key is the unique base name ("<secs>.M<usecs>P<pid>....<host>").
	Key string
	// Recent reports that the message was in new/ when this process first
	// saw it, Dovecot's notion of \Recent.
	Recent bool
}

// HasFlag reports whether flag (exact spelling, keywords case-sensitive
// as stored) is set.
func (m *Message) HasFlag(flag string) bool {
	for _, f := range m.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// Status is a folder's summary, for IMAP STATUS and SELECT.
type Status struct {
	UIDValidity uint32
	UIDNext     uint32
	Messages    int
	Unseen      int
	Recent      int
	Deleted     int
	// Size is the sum of message sizes (RFC 8438 STATUS=SIZE uses VSize).
	Size, VSize int64
}

// Snapshot is a consistent view of a folder at one instant.
type Snapshot struct {
	UIDValidity uint32
	UIDNext     uint32
	// Messages are sorted by UID; index i is sequence number i+1.
	Messages []Message
	// Keywords are the folder's known keywords (dovecot-keywords order),
	// for IMAP's FLAGS and PERMANENTFLAGS.
	Keywords []string
}

// Find returns the index of uid in s.Messages, or -1.
func (s *Snapshot) Find(uid uint32) int {
	lo, hi := 0, len(s.Messages)
	for lo < hi {
		mid := (lo + hi) / 2
		switch u := s.Messages[mid].UID; {
		case u == uid:
			return mid
		case u < uid:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return -1
}

// UIDL returns the POP3 unique-id listing string Dovecot produces with
// its default pop3_uidl_format "%08Xu%08Xv".
func UIDL(uidValidity, uid uint32) string {
	return fmt.Sprintf("%08X%08X", uid, uidValidity)
}

// FlagOp says how StoreFlags combines the given flags with the current.
type FlagOp int

// Flag operations, as IMAP STORE's FLAGS, +FLAGS and -FLAGS.
const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// CopyResult pairs source UIDs with the UIDs assigned in the destination,
// for UIDPLUS's COPYUID.
type CopyResult struct {
	UIDValidity uint32 // the destination's
	Source      []uint32
	Dest        []uint32
}

// EventKind says what changed.
type EventKind int

// Kinds of Event.
const (
	// EventNew: messages were added (UIDs given).
	EventNew EventKind = iota + 1
	// EventExpunged: messages were removed (UIDs given).
	EventExpunged
	// EventFlags: flags of messages changed (UIDs given).
	EventFlags
	// EventReset: the watcher missed events (it was too slow) or the
	// UIDVALIDITY changed; take a new Snapshot.
	EventReset
)

// Event is one change notification.
type Event struct {
	Kind EventKind
	UIDs []uint32
}

// Folder is one mailbox. Methods are safe for concurrent use; changes are
// visible to every handle of the Store at once.
type Folder struct {
	m    *Maildir
	name string
}

// Name returns the folder's name ("INBOX" for the root).
func (f *Folder) Name() string { return f.name }

// Sync picks up changes made by other processes. Snapshot and Status sync
// when the directories changed; call Sync to force a full rescan.
func (f *Folder) Sync(ctx context.Context) error { return errNotImplemented }

// Status returns the folder's summary.
func (f *Folder) Status(ctx context.Context) (Status, error) { return Status{}, errNotImplemented }

// Snapshot returns the folder's messages from the index, assigning UIDs
// to messages seen for the first time and moving new/ to cur/ as Dovecot
// does.
func (f *Folder) Snapshot(ctx context.Context) (*Snapshot, error) { return nil, errNotImplemented }

// Open opens the message uid for reading. The file stays readable after
// a concurrent flag change or expunge (it is open).
func (f *Folder) Open(ctx context.Context, uid uint32) (*os.File, Message, error) {
	return nil, Message{}, errNotImplemented
}

// Append stores a message with flags and internal date (zero: now) and
// returns its UID, durably, as IMAP APPEND needs.
func (f *Folder) Append(ctx context.Context, r io.Reader, flags []string, date time.Time) (uint32, error) {
	return 0, errNotImplemented
}

// Copy copies the messages uids (missing ones are skipped) into dest,
// keeping flags and internal dates, and returns the UID pairs.
func (f *Folder) Copy(ctx context.Context, uids []uint32, dest *Folder) (CopyResult, error) {
	return CopyResult{}, errNotImplemented
}

// Move moves the messages into dest (by rename, so without copying data)
// and returns the UID pairs; they are expunged from f.
func (f *Folder) Move(ctx context.Context, uids []uint32, dest *Folder) (CopyResult, error) {
	return CopyResult{}, errNotImplemented
}

// StoreFlags changes the flags of messages uids and returns them as they
// are afterwards. Each change renames one file: O(1) per message.
func (f *Folder) StoreFlags(ctx context.Context, uids []uint32, op FlagOp, flags []string) ([]Message, error) {
	return nil, errNotImplemented
}

// Expunge removes the messages uids and returns the UIDs removed.
func (f *Folder) Expunge(ctx context.Context, uids []uint32) ([]uint32, error) {
	return nil, errNotImplemented
}

// Watch returns a channel of changes to the folder, closed when ctx is
// done. Changes through this Store arrive at once, others' within
// Options.PollInterval (and sooner through fsnotify).
func (f *Folder) Watch(ctx context.Context) (<-chan Event, error) {
	return nil, errNotImplemented
}

package maildir

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
	// Flags holds system flags (FlagSeen...) then keywords, each group
	// sorted. The slice is shared between messages: do not modify it.
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
	// Recent reports that the message arrived in this folder (found in
	// new/, appended, copied or moved in) and no one has claimed it with
	// ClaimRecent yet: IMAP's \Recent, which the first session to select
	// the folder read-write gets, as Dovecot does.
	Recent bool
	// ModSeq is the message's modification sequence (RFC 7162): the
	// folder's modseq when it arrived or its flags last changed.
	ModSeq uint64
	// SaveDate is when the message entered this folder, in unix
	// nanoseconds (RFC 8514 SAVEDATE).
	SaveDate int64
	// EmailID is the message's RFC 8474 EMAILID: stable for the
	// message's life, kept by a move and by a copy.
	EmailID string
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
	// HighestModSeq is the folder's highest modification sequence.
	HighestModSeq uint64
	// MailboxID is the folder's RFC 8474 MAILBOXID: derived from the
	// GUID in dovecot-uidlist, so it follows the folder through a
	// rename and changes when the folder is recreated.
	MailboxID string
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
	// HighestModSeq is the folder's highest modification sequence at
	// the instant of the snapshot.
	HighestModSeq uint64
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
	// Seq numbers the folder's changes in the order they were applied
	// (per Store, from 1): a watcher receives increasing values, and a
	// gap means events were dropped (an EventReset says so). An
	// EventReset carries the Seq of the last change before it.
	Seq uint64
	// ModSeq is the modification sequence the change was given (the
	// folder's highest after a merge of other writers' changes).
	ModSeq uint64
}

// Folder is one mailbox. Methods are safe for concurrent use; changes are
// visible to every handle of the Store at once.
type Folder struct {
	m    *Maildir
	st   *folderState
	name string
}

// Name returns the folder's name ("INBOX" for the root).
func (f *Folder) Name() string { return f.name }

// do runs fn with the folder state locked and up to date, and hands the
// changes found and made to the watchers in the order they were applied.
func (f *Folder) do(ctx context.Context, force bool, fn func(st *folderState) ([]Event, error)) error {
	if err := f.m.check(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st := f.st
	st.mu.Lock()
	defer st.mu.Unlock()
	// Events go out as soon as their changes are applied, under the lock:
	// fn may apply and announce more of its own (a rescan on a stale name).
	evs, err := st.sync(ctx, force)
	st.notify(evs)
	if err == nil && fn != nil {
		evs, err = fn(st)
		st.notify(evs)
	}
	return err
}

// Sync picks up changes made by other processes with a full rescan.
// Snapshot, Status and the other methods sync cheaply on their own
// (a rescan only when a directory's mtime changed).
func (f *Folder) Sync(ctx context.Context) error { return f.do(ctx, true, nil) }

// Status returns the folder's summary.
func (f *Folder) Status(ctx context.Context) (Status, error) {
	var s Status
	err := f.do(ctx, false, func(st *folderState) ([]Event, error) {
		s.UIDValidity, s.UIDNext, s.Messages = st.uidValidity, st.nextUID, len(st.list)
		s.HighestModSeq = st.highestModSeq
		s.MailboxID = st.mailboxID()
		for _, e := range st.list {
			if !strings.ContainsRune(e.info, 'S') {
				s.Unseen++
			}
			if strings.ContainsRune(e.info, 'T') {
				s.Deleted++
			}
			if e.recent {
				s.Recent++
			}
			s.Size += e.size
			s.VSize += e.vsize
		}
		return nil, nil
	})
	return s, err
}

// Snapshot returns the folder's messages from the index, assigning UIDs
// to messages seen for the first time and moving new/ to cur/ as Dovecot
// does.
func (f *Folder) Snapshot(ctx context.Context) (*Snapshot, error) {
	var snap *Snapshot
	err := f.do(ctx, false, func(st *folderState) ([]Event, error) {
		snap = &Snapshot{UIDValidity: st.uidValidity, UIDNext: st.nextUID, Messages: make([]Message, len(st.list)),
			HighestModSeq: st.highestModSeq}
		for i, e := range st.list {
			snap.Messages[i] = st.message(e.uid, e)
		}
		for _, k := range st.keywords {
			if k != "" {
				snap.Keywords = append(snap.Keywords, k)
			}
		}
		return nil, nil
	})
	return snap, err
}

// Selection is what opening a folder for a session needs, taken in one
// step without a Message per message: what IMAP's SELECT answers and
// the UIDs its sequence numbers stand for.
type Selection struct {
	UIDValidity   uint32
	UIDNext       uint32
	HighestModSeq uint64
	// UIDs are the folder's messages in ascending order; index i is
	// sequence number i+1.
	UIDs []uint32
	// FirstUnseen is the sequence number of the first message without
	// FlagSeen, 0 when every message has it.
	FirstUnseen int
	// Recent are the UIDs of the Recent messages, ascending: claimed for
	// the caller when Select was asked to claim them (see ClaimRecent).
	Recent []uint32
	// Keywords are the folder's known keywords, as in Snapshot.
	Keywords []string
	// MailboxID is the folder's RFC 8474 MAILBOXID ("" when unknown), as
	// in Status.
	MailboxID string
}

// Select returns the folder's Selection after one cheap sync: O(messages)
// in a few words per message, where a Snapshot builds every Message.
// With claim it also claims the Recent messages, as ClaimRecent does, in
// the same step.
func (f *Folder) Select(ctx context.Context, claim bool) (*Selection, error) {
	var sel *Selection
	err := f.do(ctx, false, func(st *folderState) ([]Event, error) {
		sel = &Selection{UIDValidity: st.uidValidity, UIDNext: st.nextUID, HighestModSeq: st.highestModSeq,
			UIDs: make([]uint32, len(st.list)), MailboxID: st.mailboxID()}
		for i, e := range st.list {
			sel.UIDs[i] = e.uid
			if sel.FirstUnseen == 0 && !strings.ContainsRune(e.info, 'S') {
				sel.FirstUnseen = i + 1
			}
			if e.recent {
				sel.Recent = append(sel.Recent, e.uid)
				if claim {
					e.recent = false
				}
			}
		}
		for _, k := range st.keywords {
			if k != "" {
				sel.Keywords = append(sel.Keywords, k)
			}
		}
		return nil, nil
	})
	return sel, err
}

// ClaimRecent returns the UIDs of the messages that are Recent, in
// ascending order, and clears their Recent mark: the caller (an IMAP
// session selecting the folder read-write, RFC 3501 section 2.3.2) is the
// one session that reports them \Recent. The claim does not write the
// index by itself (a SELECT must not cost an index rewrite); it is kept
// with the next change that does, so after a crash before then the
// messages may be Recent once more, which \Recent tolerates.
func (f *Folder) ClaimRecent(ctx context.Context) ([]uint32, error) {
	var uids []uint32
	err := f.do(ctx, false, func(st *folderState) ([]Event, error) {
		for _, e := range st.list {
			if e.recent {
				uids = append(uids, e.uid)
				e.recent = false
			}
		}
		return nil, nil
	})
	return uids, err
}

// Message returns the message uid, or ErrNoMessage.
func (f *Folder) Message(ctx context.Context, uid uint32) (Message, error) {
	var m Message
	err := f.do(ctx, false, func(st *folderState) ([]Event, error) {
		e := st.ents[uid]
		if e == nil {
			return nil, ErrNoMessage
		}
		m = st.message(uid, e)
		return nil, nil
	})
	return m, err
}

// Messages returns the messages uids that exist, in the order asked, after
// one cheap sync: O(len(uids)), for fetching a few messages of a big
// folder without a whole Snapshot.
func (f *Folder) Messages(ctx context.Context, uids []uint32) ([]Message, error) {
	var out []Message
	err := f.do(ctx, false, func(st *folderState) ([]Event, error) {
		out = make([]Message, 0, len(uids))
		for _, uid := range uids {
			if e := st.ents[uid]; e != nil {
				out = append(out, st.message(uid, e))
			}
		}
		return nil, nil
	})
	return out, err
}

// Open opens the message uid for reading. The file stays readable after
// a concurrent flag change or expunge (it is open). A UID already known
// costs no sync: only if its file was renamed or removed meanwhile is the
// folder rescanned.
func (f *Folder) Open(ctx context.Context, uid uint32) (*os.File, Message, error) {
	if err := f.m.check(); err != nil {
		return nil, Message{}, err
	}
	for attempt := 0; ; attempt++ {
		var p string
		var msg Message
		lookup := func(st *folderState) ([]Event, error) {
			e := st.ents[uid]
			if e == nil {
				return nil, ErrNoMessage
			}
			p = filepath.Join(st.dir, e.relPath())
			msg = st.message(uid, e)
			return nil, nil
		}
		var err error
		if attempt == 0 {
			f.st.mu.Lock()
			if f.st.loaded && !f.st.gone {
				_, err = lookup(f.st)
			}
			f.st.mu.Unlock()
		}
		if attempt > 0 || p == "" {
			err = f.do(ctx, attempt > 0, lookup)
		}
		if err != nil {
			return nil, Message{}, err
		}
		fh, err := os.Open(p)
		if err == nil {
			return fh, msg, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt > 0 {
			return nil, Message{}, err
		}
		// Renamed by another process (a flag change): rescan and retry.
	}
}

// LastEvent syncs cheaply (as Snapshot does) and returns the Seq of the
// folder's last event, 0 before any: a watcher that has received an
// event with that Seq or a later one has been told of every change
// applied so far, those the sync found on disk included. A watcher that
// missed events is offered its EventReset again.
func (f *Folder) LastEvent(ctx context.Context) (uint64, error) {
	var seq uint64
	err := f.do(ctx, false, func(st *folderState) ([]Event, error) {
		st.wmu.Lock()
		seq = st.seq
		st.wmu.Unlock()
		return nil, nil
	})
	f.st.flushMissed()
	return seq, err
}

// Watch returns a channel of changes to the folder, closed when ctx is
// done, the folder is deleted or renamed, or the Store is closed. Changes
// through this Store arrive at once, others' within Options.PollInterval
// (sooner where fsnotify works), in the order they were applied (see
// Event.Seq). An event may repeat what a later Snapshot shows. After the
// Store's Close, Watch fails with ErrClosed.
func (f *Folder) Watch(ctx context.Context) (<-chan Event, error) {
	var w *watcher
	// Registered under the folder lock, right after a sync: the watch
	// gets every change applied after the state Watch synced to.
	err := f.do(ctx, false, func(st *folderState) ([]Event, error) {
		var err error
		w, err = st.addWatcher(ctx)
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return w.ch, nil
}

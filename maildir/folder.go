package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
	// Recent reports that the message was in new/ when this process first
	// saw it and no Snapshot has reported it yet, Dovecot's notion of
	// \Recent (the first session to see a message gets it).
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
	st   *folderState
	name string
}

// Name returns the folder's name ("INBOX" for the root).
func (f *Folder) Name() string { return f.name }

// do runs fn with the folder state locked and up to date, then hands the
// changes found and made to the watchers.
func (f *Folder) do(ctx context.Context, force bool, fn func(st *folderState) ([]Event, error)) error {
	if err := f.m.check(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st := f.st
	st.mu.Lock()
	evs, err := st.sync(ctx, force)
	if err == nil && fn != nil {
		var mine []Event
		mine, err = fn(st)
		evs = append(evs, mine...)
	}
	st.mu.Unlock()
	st.notify(evs)
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
		s.UIDValidity, s.UIDNext, s.Messages = st.uidValidity, st.nextUID, len(st.uids)
		for _, e := range st.ents {
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
		snap = &Snapshot{UIDValidity: st.uidValidity, UIDNext: st.nextUID, Messages: make([]Message, len(st.uids))}
		for i, uid := range st.uids {
			e := st.ents[uid]
			snap.Messages[i] = st.message(uid, e)
			e.recent = false
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

// importFile is a message file entering a folder under a new UID.
type importFile struct {
	from  string // path of the file to move or link in
	link  bool   // hard-link (copy) rather than rename (move)
	key   string
	info  string
	size  int64
	vsize int64
	mtime int64
}

// importFiles puts files into cur/, fsyncs it, and gives them UIDs under
// the uidlist lock, so no other process can number them first. Files that
// vanished meanwhile are skipped (their UID is 0 in the result).
func (st *folderState) importFiles(ctx context.Context, files []importFile) ([]uint32, []Event, error) {
	lock, err := st.lockUIDList(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer lock.release()
	curDir := filepath.Join(st.dir, "cur")
	placed := make([]bool, len(files))
	any := false
	for i, im := range files {
		to := filepath.Join(curDir, im.key+infoSep+im.info)
		var err error
		if im.link {
			err = os.Link(im.from, to)
		} else {
			err = os.Rename(im.from, to)
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		placed[i], any = true, true
	}
	if !any {
		return make([]uint32, len(files)), nil, nil
	}
	if err := st.s.syncers.syncDir(context.WithoutCancel(ctx), curDir); err != nil {
		return nil, nil, err
	}
	ul, perr := st.readUIDList()
	rewrite := perr != nil || ul == nil || st.ulDirty
	if ul != nil {
		if st.adoptHeader(ul) {
			// UIDVALIDITY changed under us: the next sync rescans and
			// renumbers everything else from the file.
			st.newStamp = fileStamp{}
			rewrite = true
		}
	}
	if st.uidValidity == 0 {
		st.uidValidity = uint32(time.Now().Unix())
		st.nextUID = 1
	}
	if st.nextUID == 0 {
		st.nextUID = 1
	}
	uids := make([]uint32, len(files))
	var recs []uidRec
	for i, im := range files {
		if !placed[i] {
			continue
		}
		uid := st.nextUID
		st.nextUID++
		st.add(uid, &entry{key: im.key, info: im.info, hasInfo: true, size: im.size, vsize: im.vsize, mtime: im.mtime})
		uids[i] = uid
		recs = append(recs, uidRec{uid: uid, key: im.key})
	}
	if rewrite {
		err = st.writeUIDList(ul)
	} else {
		err = st.appendUIDList(recs)
	}
	if err != nil {
		return nil, nil, err
	}
	var added []uint32
	for _, u := range uids {
		if u != 0 {
			added = append(added, u)
		}
	}
	st.adoptOwnChange()
	return uids, []Event{{Kind: EventNew, UIDs: added}}, nil
}

// Append stores a message with flags and internal date (zero: now) and
// returns its UID, durably, as IMAP APPEND needs. Over quota it returns a
// *QuotaError.
func (f *Folder) Append(ctx context.Context, r io.Reader, flags []string, date time.Time) (uint32, error) {
	if err := f.m.check(); err != nil {
		return 0, err
	}
	s, st := f.m.store, f.st
	info, err := s.infoFor(ctx, st.dir, flags)
	if err != nil {
		return 0, err
	}
	if date.IsZero() {
		date = s.opts.Now()
	}
	key := s.names.next(s.opts.Now())
	tmp := filepath.Join(st.dir, "tmp", key)
	size, vsize, err := s.writeTmp(ctx, tmp, r, date)
	if err != nil {
		return 0, err
	}
	if err := s.chargeQuota(ctx, f.m.path, nil, size); err != nil {
		os.Remove(tmp)
		return 0, err
	}
	var uid uint32
	err = f.do(ctx, false, func(st *folderState) ([]Event, error) {
		uids, evs, err := st.importFiles(ctx, []importFile{{from: tmp, key: withSizes(key, size, vsize), info: info,
			size: size, vsize: vsize, mtime: date.UnixNano()}})
		if err != nil {
			return nil, err
		}
		uid = uids[0]
		return evs, nil
	})
	if err != nil || uid == 0 {
		os.Remove(tmp)
		s.refundQuota(f.m.path, size)
		if err == nil {
			err = fmt.Errorf("maildir: appended file vanished")
		}
		return 0, err
	}
	return uid, nil
}

// sources collects the files of messages uids for a copy or move.
func (f *Folder) sources(ctx context.Context, uids []uint32) ([]uint32, []importFile, error) {
	var found []uint32
	var files []importFile
	err := f.do(ctx, false, func(st *folderState) ([]Event, error) {
		for _, uid := range uids {
			e := st.ents[uid]
			if e == nil {
				continue
			}
			found = append(found, uid)
			files = append(files, importFile{from: filepath.Join(st.dir, e.relPath()), key: e.key, info: e.info,
				size: e.size, vsize: e.vsize, mtime: e.mtime})
		}
		return nil, nil
	})
	return found, files, err
}

// translateInfo maps keyword letters of info from one folder's
// dovecot-keywords to another's, registering keywords as needed.
func (f *Folder) translateInfo(ctx context.Context, dest *Folder, info string) (string, error) {
	if !strings.ContainsFunc(info, func(r rune) bool { return r >= 'a' && r <= 'z' }) {
		return info, nil
	}
	f.st.mu.Lock()
	flags := flagsFromInfo(info, f.st.keywords)
	f.st.mu.Unlock()
	var keep []byte
	for i := 0; i < len(info); i++ {
		if c := info[i]; c >= 'A' && c <= 'Z' {
			keep = append(keep, c)
		}
	}
	out, err := f.m.store.infoFor(ctx, dest.st.dir, slices.DeleteFunc(flags, func(s string) bool { return strings.HasPrefix(s, `\`) }))
	if err != nil {
		return "", err
	}
	return normInfo(string(keep) + out), nil
}

// Copy copies the messages uids (missing ones are skipped) into dest by
// hard links, keeping flags and internal dates, and returns the UID
// pairs for UIDPLUS. Over quota it returns a *QuotaError and copies
// nothing.
func (f *Folder) Copy(ctx context.Context, uids []uint32, dest *Folder) (CopyResult, error) {
	return f.transfer(ctx, uids, dest, false)
}

// Move moves the messages into dest by rename, without copying data, and
// returns the UID pairs; they are expunged from f.
func (f *Folder) Move(ctx context.Context, uids []uint32, dest *Folder) (CopyResult, error) {
	if dest.st == f.st {
		res, err := f.transfer(ctx, uids, dest, false)
		if err != nil {
			return res, err
		}
		_, err = f.Expunge(ctx, res.Source)
		return res, err
	}
	return f.transfer(ctx, uids, dest, true)
}

func (f *Folder) transfer(ctx context.Context, uids []uint32, dest *Folder, move bool) (CopyResult, error) {
	if err := dest.m.check(); err != nil {
		return CopyResult{}, err
	}
	s := f.m.store
	found, files, err := f.sources(ctx, uids)
	if err != nil || len(files) == 0 {
		return CopyResult{}, err
	}
	var total int64
	for i := range files {
		files[i].link = !move
		if !move {
			base := s.names.next(s.opts.Now())
			files[i].key = withSizes(base, files[i].size, files[i].vsize)
			total += files[i].size
		}
		if files[i].info, err = f.translateInfo(ctx, dest, files[i].info); err != nil {
			return CopyResult{}, err
		}
	}
	if !move {
		u, stale, err := s.usage(ctx, f.m.path, nil, false)
		if err != nil {
			return CopyResult{}, err
		}
		if u.Limit.Bytes > 0 && u.Bytes+total > u.Limit.Bytes || u.Limit.Messages > 0 && u.Messages+int64(len(files)) > u.Limit.Messages {
			_ = stale
			return CopyResult{}, &QuotaError{Limit: u.Limit, Usage: u, Size: total}
		}
	}
	var newUIDs []uint32
	err = dest.do(ctx, false, func(st *folderState) ([]Event, error) {
		var evs []Event
		var err error
		newUIDs, evs, err = st.importFiles(ctx, files)
		return evs, err
	})
	if err != nil {
		return CopyResult{}, err
	}
	res := CopyResult{UIDValidity: dest.st.uidValidityNow()}
	var copied int64
	var n int64
	for i, u := range newUIDs {
		if u == 0 {
			continue
		}
		res.Source = append(res.Source, found[i])
		res.Dest = append(res.Dest, u)
		copied += files[i].size
		n++
	}
	if !move {
		if err := s.addQuota(f.m.path, copied, n); err != nil {
			s.log.Warn("maildir: updating maildirsize", "path", f.m.path, "err", err)
		}
		return res, nil
	}
	err = f.do(ctx, false, func(st *folderState) ([]Event, error) {
		st.remove(res.Source)
		st.adoptOwnChange()
		if err := st.rewriteUIDListLocked(ctx); err != nil {
			return nil, err
		}
		return []Event{{Kind: EventExpunged, UIDs: res.Source}}, nil
	})
	return res, err
}

func (st *folderState) uidValidityNow() uint32 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.uidValidity
}

// StoreFlags changes the flags of messages uids and returns them as they
// are afterwards (missing UIDs are skipped). Each change renames one
// file: O(1) per message.
func (f *Folder) StoreFlags(ctx context.Context, uids []uint32, op FlagOp, flags []string) ([]Message, error) {
	if err := f.m.check(); err != nil {
		return nil, err
	}
	letters, err := f.m.store.infoFor(ctx, f.st.dir, flags)
	if err != nil {
		return nil, err
	}
	var out []Message
	err = f.do(ctx, false, func(st *folderState) ([]Event, error) {
		var changed []uint32
		for _, uid := range uids {
			e := st.ents[uid]
			if e == nil {
				continue
			}
			info := applyFlags(e.info, letters, op)
			if info != e.info || e.inNew {
				ok, err := st.rename(ctx, uid, e, info)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
				changed = append(changed, uid)
			}
			out = append(out, st.message(uid, e))
		}
		if len(changed) == 0 {
			return nil, nil
		}
		st.adoptOwnChange()
		return []Event{{Kind: EventFlags, UIDs: changed}}, nil
	})
	return out, err
}

// applyFlags computes the new info letters. Letters that are not IMAP
// flags (Maildir's P, keywords without a name) survive a set.
func applyFlags(cur, letters string, op FlagOp) string {
	switch op {
	case FlagsAdd:
		return normInfo(cur + letters)
	case FlagsRemove:
		return strings.Map(func(r rune) rune {
			if strings.ContainsRune(letters, r) {
				return -1
			}
			return r
		}, cur)
	default:
		keep := strings.Map(func(r rune) rune {
			if r == 'P' {
				return r
			}
			return -1
		}, cur)
		return normInfo(keep + letters)
	}
}

// rename gives message uid the info letters info (moving it to cur/).
// If another process renamed or removed the file meanwhile, it rescans
// once; ok is false when the message is gone.
func (st *folderState) rename(ctx context.Context, uid uint32, e *entry, info string) (bool, error) {
	for attempt := 0; ; attempt++ {
		from := filepath.Join(st.dir, e.relPath())
		to := filepath.Join(st.dir, "cur", e.key+infoSep+info)
		err := os.Rename(from, to)
		if err == nil {
			e.info, e.inNew, e.hasInfo = info, false, true
			st.indexDirty = true
			return true, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt > 0 {
			return false, err
		}
		evs, err := st.sync(ctx, true)
		if err != nil {
			return false, err
		}
		st.notify(evs)
		if e = st.ents[uid]; e == nil {
			return false, nil
		}
	}
}

// Expunge removes the messages uids and returns the UIDs removed.
func (f *Folder) Expunge(ctx context.Context, uids []uint32) ([]uint32, error) {
	var gone []uint32
	var freed int64
	err := f.do(ctx, false, func(st *folderState) ([]Event, error) {
		for _, uid := range uids {
			e := st.ents[uid]
			if e == nil {
				continue
			}
			err := os.Remove(filepath.Join(st.dir, e.relPath()))
			if errors.Is(err, fs.ErrNotExist) {
				// Renamed by a flag change elsewhere? Look again.
				if evs, serr := st.sync(ctx, true); serr == nil {
					st.notify(evs)
				}
				if e = st.ents[uid]; e == nil {
					continue
				}
				err = os.Remove(filepath.Join(st.dir, e.relPath()))
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			gone = append(gone, uid)
			freed += e.size
		}
		if len(gone) == 0 {
			return nil, nil
		}
		st.remove(gone)
		st.adoptOwnChange()
		if err := st.rewriteUIDListLocked(ctx); err != nil {
			f.m.store.log.Warn("maildir: rewriting dovecot-uidlist", "dir", st.dir, "err", err)
		}
		return []Event{{Kind: EventExpunged, UIDs: gone}}, nil
	})
	if len(gone) > 0 {
		if qerr := f.m.store.addQuota(f.m.path, -freed, -int64(len(gone))); qerr != nil {
			f.m.store.log.Warn("maildir: updating maildirsize", "path", f.m.path, "err", qerr)
		}
	}
	return gone, err
}

// Watch returns a channel of changes to the folder, closed when ctx is
// done or the folder is deleted or renamed. Changes through this Store
// arrive at once, others' within Options.PollInterval (sooner where
// fsnotify works). An event may repeat what a later Snapshot shows.
func (f *Folder) Watch(ctx context.Context) (<-chan Event, error) {
	if err := f.do(ctx, false, nil); err != nil {
		return nil, err
	}
	return f.st.addWatcher(ctx).ch, nil
}

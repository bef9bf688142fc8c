package maildir

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// trashedDir is where a deleted folder is moved before its removal;
// Dovecot uses and skips the same name, so a crash leaves nothing listed.
const trashedDir = ".DOVECOT-TRASHED"

// userState is the shared in-memory state of one Maildir.
type userState struct {
	s    *Store
	path string
	refs int // guarded by Store.mu

	initOnce sync.Once
	initErr  error

	mu            sync.Mutex
	folders       map[string]*folderState   // by directory
	folderWatches map[*folderWatch]struct{} // WatchFolders (folderwatch.go)

	subsMu sync.Mutex // serializes subscription and special-use changes in this process

	count folderCounter // the folders on disk, against Options.MaxFolders (limits.go)
}

func newUserState(s *Store, p string) *userState {
	return &userState{s: s, path: p, folders: make(map[string]*folderState)}
}

// init creates the Maildir and the special folders, and cleans tmp/.
func (u *userState) init(ctx context.Context) error {
	s := u.s
	if err := s.ensureFolder(u.path, u.path, "INBOX", true); err != nil {
		return err
	}
	for _, sf := range s.opts.SpecialFolders {
		name, err := CheckName(sf.Name)
		if err != nil || name == "INBOX" {
			continue
		}
		dir := folderDir(u.path, name)
		if _, err := os.Stat(dir); err == nil {
			continue
		}
		if err := s.mkdirDurable(dir); err != nil {
			return err
		}
		if err := u.subscribe(ctx, name, true); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(filepath.Join(u.path, trashedDir)); err != nil {
		s.log.Warn("maildir: removing deleted folder", "path", u.path, "err", err)
	}
	if err := s.CleanTmp(ctx, u.path); err != nil {
		s.log.Warn("maildir: cleaning tmp", "path", u.path, "err", err)
	}
	return nil
}

// folder returns the state of the folder stored in dir.
func (u *userState) folder(dir, name string) *folderState {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.folders[dir]
	if f == nil {
		f = &folderState{u: u, s: u.s, dir: dir, name: name}
		u.folders[dir] = f
	}
	return f
}

// forget drops the states of folders whose directories match, after a
// delete or rename: their handles report ErrNoFolder from then on.
func (u *userState) forget(match func(dir string) bool) {
	u.mu.Lock()
	var gone []*folderState
	for d, f := range u.folders {
		if match(d) {
			gone = append(gone, f)
			delete(u.folders, d)
		}
	}
	u.mu.Unlock()
	for _, f := range gone {
		f.mu.Lock()
		f.gone = true
		f.dropHeld()
		f.notify([]Event{{Kind: EventReset}}) // then the channels close
		f.mu.Unlock()
		f.stopWatching(fmt.Errorf("%w: %s", ErrNoFolder, f.name))
	}
}

// shutdown saves dirty indexes and stops pollers.
func (u *userState) shutdown() {
	u.stopFolderWatches()
	u.mu.Lock()
	fs := make([]*folderState, 0, len(u.folders))
	for _, f := range u.folders {
		fs = append(fs, f)
	}
	u.mu.Unlock()
	for _, f := range fs {
		f.stopWatching(ErrClosed)
		f.stopVerify()
		f.mu.Lock()
		// Only changes not on disk are written here: what baseStale
		// covers is in the log or rebuilt by one rescan at the next open.
		if f.loaded && f.indexDirty && !f.gone {
			f.saveIndex(context.Background())
		}
		f.dropHeld() // the state is no longer shared: its values go
		f.mu.Unlock()
	}
}

// entry is one message of a folder.
type entry struct {
	uid     uint32
	key     string // base name, the dovecot-uidlist key
	info    string // info letters after ":2,"
	inNew   bool
	hasInfo bool
	recent  bool
	size    int64
	vsize   int64
	mtime   int64 // unix nanoseconds: the internal date
	// modseq is the modification sequence of the last change.
	modseq uint64
	// saveDate is when the message entered the folder (unix
	// nanoseconds; 0 unknown: it was there before this index).
	saveDate int64
	// cacheOff is where the message's cache record starts in
	// mailagent.cache (0: none).
	cacheOff uint64
	// fieldsOff is where the message's header-fields record starts in
	// mailagent.cache (0: none; see CachedFields).
	fieldsOff uint64
	// emailID is the message's RFC 8474 EMAILID when it is not the one
	// derived from key: a copy keeps its original's.
	emailID string
	// held is the message's decoded header fields kept in memory (see
	// DecodedFields), nil when none.
	held *heldValue
	// derivedID is the EMAILID derived from key, once emailIDOf has
	// computed it (a Snapshot of a large folder would otherwise hash
	// every base name each time).
	derivedID string
}

// emailIDOf returns the EMAILID of a message: its own, or one derived
// from its base name, which a message keeps for its life (flag changes
// and moves rename only the part after ":2,"). The caller holds the
// folder's lock (or the entry is not shared yet).
func (e *entry) emailIDOf() string {
	if e.emailID != "" {
		return e.emailID
	}
	if e.derivedID == "" {
		sum := sha256.Sum256([]byte(e.key))
		e.derivedID = "M" + hex.EncodeToString(sum[:12])
	}
	return e.derivedID
}

func (e *entry) relPath() string {
	if e.inNew {
		if e.hasInfo {
			return "new/" + e.key + infoSep + e.info
		}
		return "new/" + e.key
	}
	return "cur/" + e.key + infoSep + e.info
}

// fileStamp identifies a version of a file or directory cheaply.
type fileStamp struct {
	mtime int64
	size  int64
	ino   uint64
}

func stampOf(st fs.FileInfo) fileStamp {
	return fileStamp{mtime: st.ModTime().UnixNano(), size: st.Size(), ino: inodeOf(st)}
}

func statStamp(p string) (fileStamp, bool) {
	st, err := os.Stat(p)
	if err != nil {
		return fileStamp{}, false
	}
	return stampOf(st), true
}

// folderState is the shared in-memory state of one folder.
type folderState struct {
	u    *userState
	s    *Store
	dir  string
	name string

	mu          sync.Mutex
	loaded      bool
	gone        bool
	uidValidity uint32
	nextUID     uint32
	guid        string
	hdrExtra    []string
	ents        map[uint32]*entry
	list        []*entry // the same entries, ascending UID
	byKey       map[string]uint32
	keywords    []string
	kwStamp     fileStamp
	newStamp    fileStamp
	curStamp    fileStamp
	scannedAt   int64 // unix nanoseconds of the last full scan
	// ownAt is when this state last saw a change of its own in place
	// (unix nanoseconds; see settledAt).
	ownAt int64
	// digest sums nameHash over the messages' file names as the state
	// knows them; nameGen counts its changes (see window.go).
	digest  uint64
	nameGen uint64
	// verifyArmed: a background check of the dirty window is arranged or
	// running (verifyLater); verifyStopped: none is any more. vmu is held
	// by a running check.
	verifyArmed   bool
	verifyStopped bool
	verifyTimer   *time.Timer
	vmu           sync.Mutex
	ulStamp       fileStamp
	// ulNext, when not 0, says dovecot-uidlist as of ulStamp names only
	// messages of this state, all with UIDs below ulNext: what the
	// known-file check compares the file's header and last record with.
	ulNext     uint32
	ulDirty    bool // dovecot-uidlist holds records of removed messages
	indexDirty bool
	idxStamp   fileStamp // of mailagent.index as last read or written here
	// highestModSeq is the folder's HIGHESTMODSEQ; byMod orders the
	// messages by modseq (with stale records, see setModSeq); expunged
	// lists expunges by ascending modseq, complete above expungeFloor.
	highestModSeq uint64
	expungeFloor  uint64
	byMod         []modRec
	expunged      []expungeRec
	cacheGen      string // identifies the mailagent.cache cacheOff refers to
	logGen        string // the index generation mailagent.index.log extends
	logOff        int64  // how much of that log this state has applied
	lockDepth     int    // lockIndex calls holding the dovecot-uidlist lock
	// logBoot and ceiling are the log's last boot mark: flag changes up
	// to modseq ceiling may follow it without an fsync, written during
	// the boot logBoot (see flagdurability.go).
	logBoot string
	ceiling uint64
	// baseStale: mailagent.index is behind the state in what can be
	// rebuilt (directory stamps, moves to cur/) or is in the log; it is
	// brought up to date when the index is next written whole.
	baseStale bool
	flagViews map[string][]string // info letters → IMAP flags
	syncs     int                 // sync calls, for tests
	scans     int                 // listings of the folder, for tests
	// added: a delivery through this Store added a file since the last
	// sync began; set after the file is in place, cleared by sync before
	// it reads the directories.
	added atomic.Bool
	// heldBytes is what the entries' held values count against the
	// Store's bound (Options.HeldFieldsMemory).
	heldBytes int64

	wmu      sync.Mutex
	watchers map[*watcher]struct{}
	poll     *poller
	seq      uint64 // the last Event.Seq given
	watchEnd error  // why watches ended for good (folder gone, Store closed)
}

func (f *folderState) reset() {
	f.dropHeld()
	f.ents = make(map[uint32]*entry)
	f.byKey = make(map[string]uint32)
	f.list = nil
	f.digest = 0
	f.flagViews = nil
	f.byMod = nil
	f.expunged = nil
	f.expungeFloor = f.highestModSeq
}

// flagsOf returns the IMAP flags of info letters, shared between messages
// with the same letters (callers must not modify the slice).
func (f *folderState) flagsOf(info string) []string {
	if v, ok := f.flagViews[info]; ok {
		return v
	}
	if f.flagViews == nil {
		f.flagViews = make(map[string][]string)
	}
	v := flagsFromInfo(info, f.keywords)
	sortFlags(v)
	f.flagViews[info] = v
	return v
}

func (f *folderState) message(uid uint32, e *entry) Message {
	return Message{
		UID:          uid,
		Flags:        f.flagsOf(e.info),
		Size:         e.size,
		VSize:        e.vsize,
		InternalDate: time.Unix(0, e.mtime),
		Key:          e.key,
		Recent:       e.recent,
		ModSeq:       e.modseq,
		SaveDate:     e.saveDate,
		EmailID:      e.emailIDOf(),
	}
}

// add records a message under uid; uids above all known ones append.
func (f *folderState) add(uid uint32, e *entry) {
	e.uid = uid
	f.ents[uid] = e
	f.byKey[e.key] = uid
	f.digest += f.hashOf(e)
	f.nameGen++
	if n := len(f.list); n == 0 || f.list[n-1].uid < uid {
		f.list = append(f.list, e)
	} else {
		i, _ := slices.BinarySearchFunc(f.list, uid, func(x *entry, u uint32) int { return cmp.Compare(x.uid, u) })
		f.list = slices.Insert(f.list, i, e)
	}
	f.indexDirty = true
}

// remove drops messages uids, recording their expunge at modseq m.
func (f *folderState) remove(uids []uint32, m uint64) {
	if len(uids) == 0 {
		return
	}
	drop := make(map[uint32]bool, len(uids))
	var gone []uint32
	for _, u := range uids {
		if e := f.ents[u]; e != nil {
			if e.held != nil {
				f.releaseHeld(e.held.size)
			}
			f.digest -= f.hashOf(e)
			f.nameGen++
			delete(f.byKey, e.key)
			delete(f.ents, u)
			drop[u] = true
			gone = append(gone, u)
		}
	}
	f.recordExpunges(gone, m)
	f.list = slices.DeleteFunc(f.list, func(e *entry) bool { return drop[e.uid] })
	f.ulDirty = true
	f.indexDirty = true
}

// sync brings the state up to date with the disk and returns the changes
// found. It is cheap when neither directory changed: two stats.
func (f *folderState) sync(ctx context.Context, force bool) ([]Event, error) {
	if f.gone {
		return nil, fmt.Errorf("%w: %s", ErrNoFolder, f.name)
	}
	f.syncs++
	fresh, opened := false, !f.loaded
	if !f.loaded {
		f.reset()
		fresh = !f.loadIndex()
		f.loaded = true
		if !fresh && f.staleBoot() {
			evs, err := f.raiseAfterReboot(ctx)
			f.notify(evs)
			if err != nil {
				f.loaded = false
				return nil, err
			}
		}
	}
	now := f.s.opts.now().UnixNano()
	stNew, okN := statStamp(filepath.Join(f.dir, "new"))
	stCur, okC := statStamp(filepath.Join(f.dir, "cur"))
	if !okN || !okC {
		if _, err := os.Stat(f.dir); errors.Is(err, fs.ErrNotExist) {
			f.gone = true
			return nil, fmt.Errorf("%w: %s", ErrNoFolder, f.name)
		}
		// A folder directory without its subdirectories (created by hand
		// or half-deleted) is repaired rather than refused.
		if err := f.s.mkdirDurable(f.dir); err != nil {
			return nil, err
		}
		force = true
	}
	f.refreshKeywords()
	added := f.added.Swap(false)
	scan := added || force || fresh || stNew.mtime != f.newStamp.mtime || stCur.mtime != f.curStamp.mtime
	if scan && opened && !added && !force && !fresh {
		// The index was written whole before changes logged since (its
		// log replayed above): a listing showing the state's names
		// takes the directories' new stamps without a scan.
		scan = !f.verifyHeld(now, stNew, stCur)
	}
	if settled := f.settledAt(); !scan && f.scannedAt < settled && now >= settled &&
		(!f.verifyArmed || now >= settled+int64(verifyGrace)) {
		// The dirty window passed and no check is on its way (or it is
		// late): list now, and scan only if the names differ.
		scan = !f.verifyHeld(now, f.newStamp, f.curStamp)
	}
	var events []Event
	if !scan {
		// Directories unchanged; the UID list may still have been
		// recreated (new UIDVALIDITY) by another process.
		if st, ok := statStamp(filepath.Join(f.dir, uidlistName)); ok && st != f.ulStamp {
			ul, err := f.readUIDList()
			if err != nil || ul.uidValidity != f.uidValidity {
				scan = true
			} else {
				f.ulStamp = st
			}
		} else if !ok {
			scan = true
		}
	}
	if scan {
		ev, err := f.scan(ctx, now, stNew, stCur)
		if err != nil {
			return nil, err
		}
		events = ev
	}
	if f.indexDirty && (scan || fresh) {
		events = append(events, f.saveIndex(ctx)...)
	}
	f.verifyLater()
	return events, nil
}

// refreshKeywords reloads dovecot-keywords if it changed.
func (f *folderState) refreshKeywords() {
	if kw, ok := statStamp(filepath.Join(f.dir, keywordsName)); ok && kw != f.kwStamp || !ok && f.kwStamp != (fileStamp{}) {
		f.keywords = loadKeywords(f.dir)
		f.kwStamp = kw
		f.flagViews = nil
	}
}

// listing is one directory entry of a message file.
type listing struct {
	inNew   bool
	info    string
	hasInfo bool
}

func (f *folderState) readdir() (map[string]listing, error) {
	out := make(map[string]listing, len(f.ents)+16)
	for _, sub := range []string{"new", "cur"} { // new first: a file moving to cur is seen at least once
		d, err := os.Open(filepath.Join(f.dir, sub))
		if err != nil {
			return nil, err
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			base, l, ok := listed(sub, n)
			if !ok {
				continue
			}
			if old, dup := out[base]; dup && !old.inNew {
				continue // the same base twice: keep cur/'s
			}
			out[base] = l
		}
	}
	return out, nil
}

// listed reads the name of a file listed in sub (new or cur): ok false
// for what is not a message.
func listed(sub, name string) (base string, l listing, ok bool) {
	if !validBase(name) {
		return "", listing{}, false
	}
	base, info, has := splitFilename(name)
	if sub == "cur" && !has {
		has, info = true, ""
	}
	if !sortedUnique(info) {
		info = normInfo(info)
	}
	return base, listing{inNew: sub == "new", info: info, hasInfo: has}, true
}

// scan reads both directories and reconciles them with the state:
// flag changes, expunges, and UIDs for new files. Whatever it finds
// changed gets a new modseq, under the dovecot-uidlist lock, after the
// modseqs other writers stored are merged (a change another mailagent
// made and recorded keeps its modseq).
func (f *folderState) scan(ctx context.Context, now int64, stNew, stCur fileStamp) ([]Event, error) {
	f.scans++
	seen, err := f.readdir()
	if err != nil {
		return nil, err
	}
	var missing []uint32
	for _, e := range f.list {
		if _, ok := seen[e.key]; !ok {
			missing = append(missing, e.uid)
		}
	}
	if len(missing) > 0 {
		// A rename in progress can hide a file from one readdir: confirm
		// with a second one before calling anything expunged.
		if missing, err = f.confirmMissing(seen, missing); err != nil {
			return nil, err
		}
	}
	var events []Event
	locked := false
	if len(missing) > 0 || f.uidValidity == 0 || f.ulDirty || f.infoChanged(seen) || len(seen) > len(f.list)-len(missing) {
		release, evs, err := f.lockIndex(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
		events, locked = evs, true
		if len(missing) > 0 {
			// Another mailagent renames only under this lock: a file it
			// was renaming during both listings above is seen now.
			if missing, err = f.confirmMissing(seen, missing); err != nil {
				return nil, err
			}
		}
	}
	var changed []uint32
	var mod uint64
	for _, e := range f.list {
		uid := e.uid
		l, ok := seen[e.key]
		if !ok {
			continue
		}
		if l.info != e.info || l.inNew != e.inNew || l.hasInfo != e.hasInfo {
			// Flags changed by a rename, or the file moved between new/
			// and cur/ by someone else (this state's own moves are
			// recorded as they happen): a new modseq either way.
			if l.info != e.info || l.inNew != e.inNew {
				changed = append(changed, uid)
				if mod == 0 {
					mod = f.newModSeq()
				}
				f.setModSeq(e, mod)
			}
			f.setName(e, l.info, l.inNew, l.hasInfo)
			f.indexDirty = true
		}
	}
	if len(missing) > 0 {
		if mod == 0 {
			mod = f.newModSeq()
		}
		f.remove(missing, mod)
		events = append(events, Event{Kind: EventExpunged, UIDs: missing, ModSeq: mod})
	}
	if len(changed) > 0 {
		events = append(events, Event{Kind: EventFlags, UIDs: changed, ModSeq: mod})
	}
	var unknown []string
	for k := range seen {
		if _, ok := f.byKey[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	reset := false
	var added []uint32
	if locked && (len(unknown) > 0 || f.uidValidity == 0) {
		var r bool
		added, r, err = f.assignUIDs(seen, unknown)
		if err != nil {
			return nil, err
		}
		reset = r
		if len(added) > 0 {
			events = append(events, Event{Kind: EventNew, UIDs: added, ModSeq: f.highestModSeq})
		}
	} else if locked && f.ulDirty {
		if err := f.rewriteUIDListHeld(); err != nil {
			f.s.log.Warn("maildir: rewriting dovecot-uidlist", "dir", f.dir, "err", err)
		}
	}
	if locked && f.indexDirty {
		// New messages and flag changes go to the log (O(1)); expunges
		// and a new UIDVALIDITY rewrite the index.
		var recs [][]byte
		if len(changed) > 0 {
			recs = append(recs, f.flagRecord(mod, changed))
		}
		if len(added) > 0 {
			recs = append(recs, f.newRecord(f.ents[added[0]].modseq, added))
		}
		if len(missing) > 0 || reset || len(recs) == 0 {
			err = f.saveIndexHeld()
		} else {
			err = f.appendIndexLog(recs...)
		}
		if err != nil {
			return nil, err
		}
	}
	moved := f.moveNewToCur()
	if stNew != f.newStamp || stCur != f.curStamp || f.unsettled() {
		f.baseStale = true // the stamps the index is valid for changed
	}
	f.newStamp, f.curStamp, f.scannedAt = stNew, stCur, now
	if moved {
		f.adoptOwnChange()
	}
	f.rehash() // what the listing showed, whatever path led here
	if reset {
		return []Event{{Kind: EventReset}}, nil
	}
	return events, nil
}

// confirmMissing lists the directories again and returns the messages
// of missing still not found, adding what it finds to seen.
func (f *folderState) confirmMissing(seen map[string]listing, missing []uint32) ([]uint32, error) {
	again, err := f.readdir()
	if err != nil {
		return nil, err
	}
	for k, l := range again {
		if _, ok := seen[k]; !ok {
			seen[k] = l
		}
	}
	return slices.DeleteFunc(missing, func(u uint32) bool {
		_, ok := seen[f.ents[u].key]
		return ok
	}), nil
}

// infoChanged reports whether a listed file's flags differ from the
// state's.
func (f *folderState) infoChanged(seen map[string]listing) bool {
	for _, e := range f.list {
		if l, ok := seen[e.key]; ok && l.info != e.info {
			return true
		}
	}
	return false
}

// moveNewToCur moves messages from new/ to cur/ with an empty info, as
// Dovecot does once a session has seen them (they stay \Recent).
func (f *folderState) moveNewToCur() (moved bool) {
	for _, e := range f.list {
		if !e.inNew {
			continue
		}
		from := filepath.Join(f.dir, e.relPath())
		to := filepath.Join(f.dir, "cur", e.key+infoSep+e.info)
		if err := os.Rename(from, to); err != nil {
			continue // moved or removed meanwhile: the next scan tells
		}
		f.setName(e, e.info, false, true)
		f.baseStale = true
		moved = true
	}
	return moved
}

// adoptOwnChange records the directories' stamps after a change made by
// this state (a rename, an unlink, a new file), so the change does not
// cost a rescan. A foreign change made in the same tick is hidden by it;
// the listing once the dirty window has passed finds it (window.go).
func (f *folderState) adoptOwnChange() {
	f.adoptIf(true, true)
}

// unchanged reports which of new/ and cur/ still have the stamps the state
// knows: a change about to be made to those can be adopted afterwards
// without hiding anyone else's.
func (f *folderState) unchanged() (newOK, curOK bool) {
	n, ok1 := statStamp(filepath.Join(f.dir, "new"))
	c, ok2 := statStamp(filepath.Join(f.dir, "cur"))
	return ok1 && n == f.newStamp, ok2 && c == f.curStamp
}

// adoptIf records the stamps of the directories selected (see
// adoptOwnChange).
func (f *folderState) adoptIf(newDir, curDir bool) {
	if st, ok := statStamp(filepath.Join(f.dir, "new")); ok && newDir {
		f.newStamp = st
	}
	if st, ok := statStamp(filepath.Join(f.dir, "cur")); ok && curDir {
		f.curStamp = st
	}
	f.ownAt = max(f.ownAt, f.s.opts.now().UnixNano())
	f.baseStale = true
	f.verifyLater()
}

// newEntry builds the entry of a file seen in the directory listing.
func (f *folderState) newEntry(key string, l listing, rec *uidRec) (*entry, bool) {
	e := &entry{key: key, info: l.info, inNew: l.inNew, hasInfo: l.hasInfo}
	e.size, e.vsize = parseSizes(key)
	if rec != nil && (e.size < 0 || e.vsize < 0) {
		for _, x := range strings.Fields(rec.ext) {
			var v int64
			if _, err := fmt.Sscan(x[1:], &v); err != nil || v < 0 {
				continue
			}
			switch {
			case x[0] == 'S' && e.size < 0:
				e.size = v
			case x[0] == 'W' && e.vsize < 0:
				e.vsize = v
			}
		}
	}
	p := filepath.Join(f.dir, e.relPath())
	st, err := os.Stat(p)
	if err != nil {
		return nil, false
	}
	e.mtime = st.ModTime().UnixNano()
	if e.size < 0 {
		e.size = st.Size()
	}
	if e.vsize < 0 {
		v, err := crlfSize(p)
		if err != nil {
			return nil, false
		}
		e.vsize = v
	}
	e.recent = l.inNew
	e.saveDate = f.s.opts.now().UnixNano()
	return e, true
}

func crlfSize(p string) (int64, error) {
	fh, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	var c crlfCounter
	if _, err := io.Copy(&c, fh); err != nil {
		return 0, err
	}
	return c.n + c.bareLF, nil
}

// sortFlags orders system flags first, then keywords, each alphabetically.
func sortFlags(v []string) {
	slices.SortFunc(v, func(a, b string) int {
		as, bs := strings.HasPrefix(a, `\`), strings.HasPrefix(b, `\`)
		switch {
		case as && !bs:
			return -1
		case bs && !as:
			return 1
		}
		return strings.Compare(a, b)
	})
}

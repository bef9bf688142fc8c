package maildir

import (
	"cmp"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Modification sequences (RFC 7162, CONDSTORE and QRESYNC).
//
// Every message carries the modseq of its last change: its arrival, a
// flag or keyword change made through this package, or a change noticed
// on disk that was made by someone else (Dovecot, a second node, a mv).
// One operation gives all the messages it changes the same new modseq,
// one above the folder's highest. Expunges are recorded with their modseq
// too, for QRESYNC's VANISHED (EARLIER).
//
// Modseqs live in mailagent.index, which is written only under the
// dovecot-uidlist lock and after reading back what other writers put
// there (modseqs merge by taking the higher, so every process converges
// on the same values and none ever goes back). A folder whose index is
// lost or damaged starts again from a modseq taken from the clock, above
// any it could have handed out before, so clients resynchronise fully
// rather than miss a change.

// maxExpungeRecords bounds the expunge records kept per folder; older
// ones are dropped and the floor raised, below which ExpungedSince
// reports that it cannot answer exactly.
const maxExpungeRecords = 100_000

// expungeRec is one expunged UID and the modseq of its expunge.
type expungeRec struct {
	uid    uint32
	modseq uint64
}

// modRec is an element of the folder's modseq order: uid had modseq
// when it was recorded (stale once the message changed again).
type modRec struct {
	modseq uint64
	uid    uint32
}

// baseModSeq is where a folder without a usable index starts counting:
// the clock in microseconds, which no modseq handed out before (one per
// operation, starting from an earlier clock reading) can have reached.
func baseModSeq() uint64 {
	return uint64(max(time.Now().UnixMicro(), 1))
}

// newModSeq returns the modseq of a new change.
func (f *folderState) newModSeq() uint64 {
	if f.highestModSeq == 0 {
		// No index: expunges before now are unknown.
		f.highestModSeq = baseModSeq()
		f.expungeFloor = max(f.expungeFloor, f.highestModSeq)
	}
	f.highestModSeq++
	return f.highestModSeq
}

// setModSeq records that e changed at modseq m.
func (f *folderState) setModSeq(e *entry, m uint64) {
	e.modseq = m
	f.byMod = append(f.byMod, modRec{modseq: m, uid: e.uid})
	f.indexDirty = true
	if len(f.byMod) > 2*len(f.list)+1024 {
		f.rebuildModOrder()
	}
}

// rebuildModOrder rebuilds the modseq order from the messages, dropping
// stale records.
func (f *folderState) rebuildModOrder() {
	f.byMod = f.byMod[:0]
	for _, e := range f.list {
		f.byMod = append(f.byMod, modRec{modseq: e.modseq, uid: e.uid})
	}
	slices.SortFunc(f.byMod, func(a, b modRec) int {
		return cmp.Or(cmp.Compare(a.modseq, b.modseq), cmp.Compare(a.uid, b.uid))
	})
}

// recordExpunges records uids as expunged at modseq m.
func (f *folderState) recordExpunges(uids []uint32, m uint64) {
	for _, u := range uids {
		f.expunged = append(f.expunged, expungeRec{uid: u, modseq: m})
	}
	if n := len(f.expunged) - maxExpungeRecords; n > 0 {
		f.expungeFloor = max(f.expungeFloor, f.expunged[n-1].modseq)
		f.expunged = slices.Delete(f.expunged, 0, n)
	}
	f.indexDirty = true
}

// expungedSet returns the UIDs of the expunge records.
func (f *folderState) expungedSet() map[uint32]bool {
	out := make(map[uint32]bool, len(f.expunged))
	for _, x := range f.expunged {
		out[x.uid] = true
	}
	return out
}

// changedSince returns the messages whose modseq is above m, ascending
// UID: O(changes since m), not O(messages).
func (f *folderState) changedSince(m uint64) []*entry {
	i, _ := slices.BinarySearchFunc(f.byMod, m+1, func(r modRec, t uint64) int { return cmp.Compare(r.modseq, t) })
	var out []*entry
	seen := map[uint32]bool{}
	for _, r := range f.byMod[i:] {
		e := f.ents[r.uid]
		if e == nil || e.modseq != r.modseq || seen[r.uid] {
			continue // expunged, or changed again later (a later record)
		}
		seen[r.uid] = true
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int { return cmp.Compare(a.uid, b.uid) })
	return out
}

// lockIndex takes the dovecot-uidlist lock and brings the state's
// modseqs up to what other writers stored; the caller saves the index
// (saveIndexHeld) and calls release. Nested calls (a rescan while a
// change holds the lock) share the lock.
func (f *folderState) lockIndex(ctx context.Context) (release func(), evs []Event, err error) {
	if f.lockDepth > 0 {
		f.lockDepth++
		return func() { f.lockDepth-- }, nil, nil
	}
	lock, err := f.lockUIDList(ctx)
	if err != nil {
		return nil, nil, err
	}
	f.lockDepth = 1
	// What the merge takes in is on disk already: it leaves the state
	// no dirtier than it was.
	dirty := f.indexDirty
	evs = f.mergeDisk()
	f.indexDirty = dirty
	return func() {
		if f.lockDepth--; f.lockDepth == 0 {
			lock.release()
		}
	}, evs, nil
}

// mergeDisk reads mailagent.index if another writer replaced it since
// this state last read or wrote it, and takes its higher modseqs (and
// with them the flags that writer set), its highest modseq and its
// expunge records. The caller holds the dovecot-uidlist lock.
func (f *folderState) mergeDisk() []Event {
	changed, added := f.mergeDiskIndex(false)
	c, a, other := f.replayIndexLog()
	changed, added = append(changed, c...), append(added, a...)
	if other {
		// The log names another generation though the index's stamp
		// did not change: a rewrite whose stamp repeated (same tick,
		// size and a reused inode). The content decides: read the
		// index again.
		c, a = f.mergeDiskIndex(true)
		changed, added = append(changed, c...), append(added, a...)
		c, a, _ = f.replayIndexLog()
		changed, added = append(changed, c...), append(added, a...)
	}
	var evs []Event
	if len(added) > 0 {
		evs = append(evs, Event{Kind: EventNew, UIDs: added, ModSeq: f.highestModSeq})
	}
	if len(changed) > 0 {
		slices.Sort(changed)
		evs = append(evs, Event{Kind: EventFlags, UIDs: slices.Compact(changed), ModSeq: f.highestModSeq})
	}
	return evs
}

// mergeDiskIndex merges mailagent.index if it was replaced since this
// state last read or wrote it (its stamp changed, or force); it returns
// the UIDs whose flags changed and those added.
func (f *folderState) mergeDiskIndex(force bool) (changed, added []uint32) {
	p := filepath.Join(f.dir, indexName)
	st, ok := statStamp(p)
	if !ok || st == f.idxStamp && !force || st.size > maxIndexSize {
		return nil, nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, nil
	}
	f.idxStamp = st
	d := &folderState{u: f.u, s: f.s, dir: f.dir}
	d.reset()
	if d.parseIndex(data) != nil || d.uidValidity != f.uidValidity && f.uidValidity != 0 {
		return nil, nil
	}
	f.highestModSeq = max(f.highestModSeq, d.highestModSeq)
	var gone map[uint32]bool
	for _, de := range d.list {
		e := f.ents[de.uid]
		if e == nil {
			if gone == nil {
				gone = f.expungedSet()
			}
			// A message the writer saw first: taken with its modseq,
			// so both agree on it (a scan drops it if it is gone).
			// One expunged here is not: the writer had not noticed
			// the expunge yet.
			if _, dup := f.byKey[de.key]; !dup && f.uidValidity != 0 && !gone[de.uid] {
				de.recent = false
				f.add(de.uid, de)
				f.setModSeq(de, de.modseq)
				f.nextUID = max(f.nextUID, de.uid+1)
				added = append(added, de.uid)
			}
			continue
		}
		if e.key != de.key || de.modseq <= e.modseq {
			continue
		}
		if de.info != e.info {
			changed = append(changed, e.uid)
			f.setName(e, de.info, de.inNew, de.hasInfo)
		}
		f.setModSeq(e, de.modseq)
	}
	if len(d.expunged) > 0 {
		have := make(map[uint32]bool, len(f.expunged))
		for _, x := range f.expunged {
			have[x.uid] = true
		}
		for _, x := range d.expunged {
			if !have[x.uid] {
				f.expunged = append(f.expunged, x)
			}
		}
		slices.SortStableFunc(f.expunged, func(a, b expungeRec) int { return cmp.Compare(a.modseq, b.modseq) })
		f.recordExpunges(nil, 0)
	}
	f.expungeFloor = max(f.expungeFloor, d.expungeFloor)
	f.logGen, f.logOff = d.logGen, 0
	f.logBoot, f.ceiling = "", 0
	return changed, added
}

// HighestModSeq returns the folder's highest modification sequence
// (RFC 7162 HIGHESTMODSEQ): every change to the folder raises it.
func (f *Folder) HighestModSeq(ctx context.Context) (uint64, error) {
	var m uint64
	err := f.do(ctx, false, func(st *folderState) ([]Event, error) {
		m = st.highestModSeq
		return nil, nil
	})
	return m, err
}

// ChangedSince returns the messages whose modseq is above modseq (their
// flags changed, or they arrived, after it), ascending UID, after a cheap
// sync. Its cost grows with the number of changes since modseq, not with
// the folder's size: CONDSTORE's FETCH (CHANGEDSINCE) and QRESYNC.
func (f *Folder) ChangedSince(ctx context.Context, modseq uint64) ([]Message, error) {
	var out []Message
	err := f.do(ctx, false, func(st *folderState) ([]Event, error) {
		for _, e := range st.changedSince(modseq) {
			out = append(out, st.message(e.uid, e))
		}
		return nil, nil
	})
	return out, err
}

// ExpungedSince returns the UIDs expunged with a modseq above modseq,
// ascending, for QRESYNC's VANISHED (EARLIER). complete is false when
// records that old were dropped (or the index was rebuilt): the answer
// then holds only what is known, and a client must be told every UID it
// may have that is no longer in the folder.
func (f *Folder) ExpungedSince(ctx context.Context, modseq uint64) (uids []uint32, complete bool, err error) {
	err = f.do(ctx, false, func(st *folderState) ([]Event, error) {
		complete = modseq >= st.expungeFloor
		for _, x := range st.expunged {
			if x.modseq > modseq && st.ents[x.uid] == nil {
				uids = append(uids, x.uid)
			}
		}
		return nil, nil
	})
	slices.Sort(uids)
	return slices.Compact(uids), complete, err
}

// mailboxID returns the folder's MAILBOXID (RFC 8474: 1 to 255 letters,
// digits, "-" and "_"), from the GUID in dovecot-uidlist.
func (f *folderState) mailboxID() string {
	if f.guid == "" {
		return ""
	}
	return "F" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, f.guid)
}

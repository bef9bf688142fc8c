package maildir

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxUIDListSize bounds what is read of a dovecot-uidlist (a million
// messages take about 70 MB).
const maxUIDListSize = 256 << 20

// readUIDList reads and parses the folder's dovecot-uidlist, recording its
// stamp. A missing file returns (nil, nil); a damaged one returns what was
// usable with errBadUIDList.
func (f *folderState) readUIDList() (*uidlist, error) {
	f.ulNext = 0
	p := filepath.Join(f.dir, uidlistName)
	fh, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		f.ulStamp = fileStamp{}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxUIDListSize))
	if err != nil {
		return nil, err
	}
	f.ulStamp = stampOf(st)
	ul, err := parseUIDList(data)
	if err != nil {
		f.s.log.Warn("maildir: damaged dovecot-uidlist, rebuilding", "dir", f.dir)
	}
	return ul, err
}

// uidlistEndsSize is how much of each end of dovecot-uidlist the
// known-file check reads: the header line and the last record fit well
// within it.
const uidlistEndsSize = 512

// readUIDListIfChanged reads dovecot-uidlist unless this state already
// knows everything in it (known), which spares an O(messages) read per
// new message. The file's stamp (mtime, size, inode) alone is not proof:
// file times are as coarse as a jiffy and a freed inode number is soon
// reused, so another writer's rewrite can carry a stamp this state
// recorded (TestSharedStorageUIDs: UIDs handed out twice and skipped).
// So when the stamp matches, the header and the last record are read
// too: the file is known only if its UIDVALIDITY is the state's, and
// its next UID and last (highest) record are within ulNext, the next UID
// as of this state's last read or write of a file that named only its
// messages. Dovecot appends records without rewriting the header, hence
// the last record. Any UID another writer gave since is at least ulNext,
// so it fails the check. ulNext rather than the state's next UID: the
// state also learns UIDs from the index log, and a record the file held
// for a file this state had not yet seen must be read again when the
// file turns up, or it would get a second UID.
func (f *folderState) readUIDListIfChanged() (ul *uidlist, known bool, err error) {
	if f.uidValidity != 0 && f.ulNext != 0 && !f.ulDirty && f.uidListKnown() {
		return nil, true, nil
	}
	ul, err = f.readUIDList()
	return ul, false, err
}

// uidListKnown reports whether dovecot-uidlist still has the stamp this
// state recorded and its two ends show nothing the state lacks.
func (f *folderState) uidListKnown() bool { return f.uidListWithin(f.ulNext) }

// uidListWithin reports whether dovecot-uidlist still has the stamp this
// state recorded, this state's UIDVALIDITY, and no UID from next on in
// its header or last record.
func (f *folderState) uidListWithin(next uint32) bool {
	fh, err := os.Open(filepath.Join(f.dir, uidlistName))
	if err != nil {
		return false
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil || stampOf(st) != f.ulStamp {
		return false
	}
	size := st.Size()
	n := min(size, uidlistEndsSize)
	head := make([]byte, n)
	if _, err := fh.ReadAt(head, 0); err != nil {
		return false
	}
	tail := head
	if size > n {
		tail = make([]byte, n)
		if _, err := fh.ReadAt(tail, size-n); err != nil {
			return false
		}
	}
	v, fileNext, last, ok := parseUIDListEnds(head, tail, size == n)
	return ok && v == f.uidValidity && fileNext <= next && last < next
}

// parseUIDListEnds reads the UIDVALIDITY and next UID of dovecot-uidlist's
// header line, at the start of head, and the UID of its last record, the
// last complete line of tail (0 when there is none). whole says head and
// tail are the entire file. ok is false when either end cannot be read
// with certainty, and the caller then reads the whole file.
func parseUIDListEnds(head, tail []byte, whole bool) (uidValidity, nextUID, lastUID uint32, ok bool) {
	hdr, _, found := bytes.Cut(head, []byte{'\n'})
	if !found {
		return 0, 0, 0, false
	}
	u, err := parseUIDList(hdr)
	if err != nil || u == nil {
		return 0, 0, 0, false
	}
	body, nl := bytes.CutSuffix(tail, []byte{'\n'})
	if !nl {
		return 0, 0, 0, false // a record being written, or a damaged file
	}
	i := bytes.LastIndexByte(body, '\n')
	if i < 0 {
		if !whole {
			return 0, 0, 0, false // the last line is longer than tail
		}
		return u.uidValidity, u.nextUID, 0, true // a header and no records
	}
	rec, recOK := parseUIDRec(string(body[i+1:]), strings.HasPrefix(string(hdr), "3 "))
	if !recOK {
		return 0, 0, 0, false
	}
	return u.uidValidity, u.nextUID, rec.uid, true
}

func (f *folderState) lockUIDList(ctx context.Context) (*dotlock, error) {
	return acquireDotlock(ctx, filepath.Join(f.dir, uidlistName), f.s.pid, f.s.host)
}

// adoptHeader takes UIDVALIDITY, GUID and the next UID from ul; it reports
// whether the UIDVALIDITY changed, which invalidates every known UID.
func (f *folderState) adoptHeader(ul *uidlist) bool {
	reset := f.uidValidity != 0 && ul.uidValidity != f.uidValidity
	if reset {
		f.reset()
		f.nextUID = 0
	}
	f.uidValidity, f.guid, f.hdrExtra = ul.uidValidity, ul.guid, ul.hdrExtra
	f.nextUID = max(f.nextUID, ul.nextUID)
	return reset
}

// assignUIDs gives UIDs to the files in unknown: those dovecot-uidlist
// already names keep theirs, the others get the next free ones, in name
// (delivery time) order, all with one new modseq. It returns the UIDs
// added to the state. The caller holds the dovecot-uidlist lock.
func (f *folderState) assignUIDs(seen map[string]listing, unknown []string) (added []uint32, reset bool, err error) {
	ul, known, perr := f.readUIDListIfChanged()
	rewrite := perr != nil || f.ulDirty
	switch {
	case known:
	case ul != nil:
		reset = f.adoptHeader(ul)
	case f.uidValidity == 0:
		// A new folder, or a lost file with nothing remembered: a new
		// UIDVALIDITY, above any a previous file could have had.
		f.uidValidity = f.s.newUIDValidity()
		f.guid = newGUID()
		f.nextUID = 1
		rewrite = true
	default:
		rewrite = true // file lost or unreadable: the state still knows every UID
	}
	if f.nextUID == 0 {
		f.nextUID = 1
	}
	recs := map[string]uint32{}
	if ul != nil {
		for _, r := range ul.recs {
			recs[r.key] = r.uid
		}
	}
	if reset {
		unknown = unknown[:0]
		for k := range seen {
			unknown = append(unknown, k)
		}
	}
	slices.SortFunc(unknown, compareKeys)
	var fresh []uidRec
	var extRecs = map[string]*uidRec{}
	if ul != nil {
		for i := range ul.recs {
			extRecs[ul.recs[i].key] = &ul.recs[i]
		}
	}
	var mod uint64
	var gone map[uint32]bool
	for _, k := range unknown {
		if _, ok := f.byKey[k]; ok {
			continue
		}
		uid, known := recs[k]
		if known && gone == nil {
			gone = f.expungedSet()
		}
		if known && (f.ents[uid] != nil || gone[uid]) {
			// The UID is taken by another file, or was expunged (a
			// file that came back, as Dovecot's "expunged message
			// reappeared"): give a new one.
			known = false
		}
		e, ok := f.newEntry(k, seen[k], extRecs[k])
		if !ok {
			continue // vanished meanwhile
		}
		if !known {
			uid = f.nextUID
			f.nextUID++
			fresh = append(fresh, uidRec{uid: uid, key: k})
		}
		f.add(uid, e)
		if mod == 0 {
			mod = f.newModSeq()
		}
		f.setModSeq(e, mod)
		added = append(added, uid)
	}
	slices.Sort(added)
	f.noteUIDListRead(ul)
	if rewrite {
		err = f.writeUIDList(ul)
	} else if len(fresh) > 0 {
		err = f.appendUIDList(fresh)
	}
	if err != nil {
		return nil, false, err
	}
	return added, reset, nil
}

// appendUIDList appends records to dovecot-uidlist, as Dovecot does for
// new messages; the header's next UID is then behind, and every reader
// (Dovecot included) takes the highest UID + 1 instead.
func (f *folderState) appendUIDList(recs []uidRec) error {
	p := filepath.Join(f.dir, uidlistName)
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return f.writeUIDList(nil)
	}
	// What is appended is the state's own: the file stays as known as it
	// was.
	var b []byte
	for _, r := range recs {
		b = appendUIDRecBytes(b, r)
	}
	_, err = fh.Write(b)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if st, ok := statStamp(p); ok {
		f.ulStamp = st
		if f.ulNext != 0 {
			f.ulNext = f.nextUID
		}
	} else {
		f.ulNext = 0
	}
	return nil
}

// noteUIDListRead records, after a full read of ul and the UIDs given
// from it, whether the file names only messages of the state, which lets
// the next assignment skip reading it (see readUIDListIfChanged). A nil
// ul (not read, or absent) leaves it as it was.
func (f *folderState) noteUIDListRead(ul *uidlist) {
	if ul == nil {
		return
	}
	f.ulNext = 0
	if ul.uidValidity == f.uidValidity && recsMatch(ul.recs, f) {
		f.ulNext = f.nextUID
	}
}

// writeUIDList rewrites dovecot-uidlist from the state, keeping records of
// disk that name files present but not yet in the state (another process
// assigned them after the last scan). The caller holds the lock.
func (f *folderState) writeUIDList(disk *uidlist) error {
	u := &uidlist{uidValidity: f.uidValidity, nextUID: f.nextUID, guid: f.guid, hdrExtra: f.hdrExtra}
	if u.guid == "" {
		u.guid = newGUID()
		f.guid = u.guid
	}
	recs := make([]uidRec, 0, len(f.list))
	for _, e := range f.list {
		recs = append(recs, uidRec{uid: e.uid, key: e.key})
	}
	own := len(recs)
	if disk != nil && len(disk.recs) > 0 {
		var present map[string]listing
		for _, r := range disk.recs {
			if _, ok := f.byKey[r.key]; ok || f.ents[r.uid] != nil {
				continue
			}
			if present == nil {
				var err error
				if present, err = f.readdir(); err != nil {
					return err
				}
			}
			if _, ok := present[r.key]; ok {
				recs = append(recs, uidRec{uid: r.uid, key: r.key, ext: r.ext})
			}
		}
		slices.SortFunc(recs, func(a, b uidRec) int { return int(int64(a.uid) - int64(b.uid)) })
	}
	u.recs = recs
	p := filepath.Join(f.dir, uidlistName)
	if err := writeFileAtomic(p, u.marshal(), true); err != nil {
		return err
	}
	f.ulNext = 0
	if st, ok := statStamp(p); ok {
		f.ulStamp = st
		if len(recs) == own {
			f.ulNext = f.nextUID
		}
	}
	f.ulDirty = false
	return nil
}

// rewriteUIDListHeld drops records of removed messages from the file.
// The caller holds the dovecot-uidlist lock.
func (f *folderState) rewriteUIDListHeld() error {
	ul, _ := f.readUIDList()
	if ul != nil && ul.uidValidity != f.uidValidity {
		return nil // recreated by someone else: the next scan resets
	}
	if ul != nil {
		f.nextUID = max(f.nextUID, ul.nextUID)
		if len(ul.recs) == len(f.list) && ul.nextUID == f.nextUID && recsMatch(ul.recs, f) {
			f.ulDirty = false // already rewritten (by Dovecot, typically)
			f.ulNext = f.nextUID
			return nil
		}
	}
	return f.writeUIDList(ul)
}

// recsMatch reports whether recs are exactly the state's messages.
func recsMatch(recs []uidRec, f *folderState) bool {
	for _, r := range recs {
		if e := f.ents[r.uid]; e == nil || e.key != r.key {
			return false
		}
	}
	return true
}

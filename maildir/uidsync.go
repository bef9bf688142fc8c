package maildir

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// maxUIDListSize bounds what is read of a dovecot-uidlist (a million
// messages take about 70 MB).
const maxUIDListSize = 256 << 20

// readUIDList reads and parses the folder's dovecot-uidlist, recording its
// stamp. A missing file returns (nil, nil); a damaged one returns what was
// usable with errBadUIDList.
func (f *folderState) readUIDList() (*uidlist, error) {
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

// readUIDListIfChanged reads dovecot-uidlist. It used to skip the read
// when the file's stamp (mtime, size, inode) was the one this state last
// saw, but several processes writing one folder proved the stamp unsafe
// (TestSharedStorageUIDs: UIDs handed out twice and skipped): file times
// are as coarse as a jiffy and a freed inode number is soon reused, so
// another writer's file can carry a stamp this state recorded. Until a
// check of the content itself (header and last record) replaces it, the
// file is read every time; known is always false.
func (f *folderState) readUIDListIfChanged() (ul *uidlist, known bool, err error) {
	ul, err = f.readUIDList()
	return ul, false, err
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
	for _, k := range unknown {
		if _, ok := f.byKey[k]; ok {
			continue
		}
		uid, known := recs[k]
		if known && f.ents[uid] != nil {
			known = false // the UID is taken by another file: give a new one
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
	}
	return nil
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
	if st, ok := statStamp(p); ok {
		f.ulStamp = st
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

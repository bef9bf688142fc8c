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

// importFile is a message file entering a folder under a new UID.
type importFile struct {
	from  string // path of the file to move or link in
	link  bool   // hard-link (copy) rather than rename (move)
	key   string
	info  string
	size  int64
	vsize int64
	mtime int64
	// emailID is the EMAILID the message keeps (a copy's original's).
	emailID string
}

// importFiles puts files into cur/, fsyncs it, and gives them UIDs under
// the uidlist lock, so no other process can number them first. Files that
// vanished meanwhile are skipped (their UID is 0 in the result).
func (st *folderState) importFiles(ctx context.Context, files []importFile) ([]uint32, []Event, error) {
	release, mevs, err := st.lockIndex(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	st.notify(mevs)
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
	ul, known, perr := st.readUIDListIfChanged()
	rewrite := perr != nil || ul == nil && !known || st.ulDirty
	if ul != nil {
		if st.adoptHeader(ul) {
			// UIDVALIDITY changed under us: the next sync rescans and
			// renumbers everything else from the file.
			st.newStamp = fileStamp{}
			rewrite = true
		}
	}
	if st.uidValidity == 0 {
		st.uidValidity = st.s.newUIDValidity()
		st.nextUID = 1
	}
	if st.nextUID == 0 {
		st.nextUID = 1
	}
	uids := make([]uint32, len(files))
	var recs []uidRec
	mod := st.newModSeq()
	now := st.s.opts.now().UnixNano()
	for i, im := range files {
		if !placed[i] {
			continue
		}
		uid := st.nextUID
		st.nextUID++
		// Appended, copied and moved messages are new to this folder:
		// \Recent until a session claims them, as delivered ones are.
		e := &entry{key: im.key, info: im.info, hasInfo: true, size: im.size, vsize: im.vsize, mtime: im.mtime, saveDate: now, recent: true}
		if id := im.emailID; id != "" && id != e.emailIDOf() {
			e.emailID = id
		}
		st.add(uid, e)
		st.setModSeq(e, mod)
		uids[i] = uid
		recs = append(recs, uidRec{uid: uid, key: im.key})
	}
	st.noteUIDListRead(ul)
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
	return uids, []Event{{Kind: EventNew, UIDs: added, ModSeq: mod}}, st.appendIndexLog(st.newRecord(mod, added))
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
		date = s.opts.now()
	}
	key := s.names.next(s.opts.now())
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
			files = append(files, importFile{from: filepath.Join(st.dir, e.relPath()), key: e.key, info: e.info, emailID: e.emailIDOf(),
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
			base := s.names.next(s.opts.now())
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
		release, evs, err := st.lockIndex(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
		st.notify(evs)
		mod := st.newModSeq()
		st.remove(res.Source, mod)
		st.adoptOwnChange()
		if err := st.rewriteUIDListHeld(); err != nil {
			return nil, err
		}
		return []Event{{Kind: EventExpunged, UIDs: res.Source, ModSeq: mod}}, st.saveIndexHeld()
	})
	return res, err
}

func (st *folderState) uidValidityNow() uint32 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.uidValidity
}

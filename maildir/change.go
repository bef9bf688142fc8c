package maildir

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// StoreFlags changes the flags of messages uids and returns them as they
// are afterwards (missing UIDs are skipped). Each change renames one file
// and costs no scan of the folder: O(1) per message. If another process
// changed the message's flags meanwhile, the change applies on top of its
// flags (the stale name fails to rename, the folder is rescanned and the
// operation recomputed).
func (f *Folder) StoreFlags(ctx context.Context, uids []uint32, op FlagOp, flags []string) ([]Message, error) {
	if err := f.m.check(); err != nil {
		return nil, err
	}
	letters, err := f.m.store.infoFor(ctx, f.st.dir, flags)
	if err != nil {
		return nil, err
	}
	var out []Message
	apply := func(st *folderState) ([]Event, error) {
		if strings.ContainsFunc(letters, func(r rune) bool { return r >= 'a' && r <= 'z' }) {
			st.refreshKeywords() // infoFor may just have added some
		}
		newOK, curOK := st.unchanged()
		var changed []uint32
		for _, uid := range uids {
			e := st.ents[uid]
			if e == nil {
				continue
			}
			e, ok, err := st.rename(ctx, uid, e, func(cur string) string { return applyFlags(cur, letters, op) })
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if e != nil {
				changed = append(changed, uid)
			} else {
				e = st.ents[uid]
			}
			out = append(out, st.message(uid, e))
		}
		if len(changed) == 0 {
			return nil, nil
		}
		// Only directories nobody else touched since the last sync keep
		// their stamps current; the others are rescanned by the next sync.
		st.adoptIf(newOK, curOK)
		return []Event{{Kind: EventFlags, UIDs: changed}}, nil
	}
	// A folder already loaded needs no sync first: a stale file name is
	// found out by the rename itself.
	st := f.st
	st.mu.Lock()
	if st.loaded && !st.gone {
		evs, err := apply(st)
		st.notify(evs)
		st.mu.Unlock()
		return out, err
	}
	st.mu.Unlock()
	err = f.do(ctx, false, apply)
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

// rename gives message uid the info letters next(current letters),
// moving it to cur/. If another process renamed or removed the file
// meanwhile, it rescans once and recomputes. It returns the entry when it
// changed (nil when it did not need to), and ok false when the message
// is gone.
func (st *folderState) rename(ctx context.Context, uid uint32, e *entry, next func(string) string) (*entry, bool, error) {
	for attempt := 0; ; attempt++ {
		info := next(e.info)
		if info == e.info && !e.inNew {
			return nil, true, nil
		}
		from := filepath.Join(st.dir, e.relPath())
		to := filepath.Join(st.dir, "cur", e.key+infoSep+info)
		err := os.Rename(from, to)
		if err == nil {
			e.info, e.inNew, e.hasInfo = info, false, true
			st.indexDirty = true
			return e, true, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt > 0 {
			return nil, false, err
		}
		evs, err := st.sync(ctx, true)
		if err != nil {
			return nil, false, err
		}
		st.notify(evs)
		if e = st.ents[uid]; e == nil {
			return nil, false, nil
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

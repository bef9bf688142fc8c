package maildir

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// StoreFlags changes the flags of messages uids and returns them as they
// are afterwards (missing UIDs are skipped). Each change renames one file
// and costs no scan of the folder: O(1) per message. If another process
// changed the message's flags meanwhile, the change applies on top of its
// flags (the stale name fails to rename, the folder is rescanned and the
// operation recomputed). The messages changed get one new modseq.
func (f *Folder) StoreFlags(ctx context.Context, uids []uint32, op FlagOp, flags []string) ([]Message, error) {
	out, _, err := f.storeFlags(ctx, uids, op, flags, 0, false)
	return out, err
}

// StoreFlagsIf is StoreFlags with CONDSTORE's UNCHANGEDSINCE (RFC 7162
// §3.1.3): a message whose modseq is above unchangedSince is left alone
// and its UID returned in failed. The test and the change are one step
// under the dovecot-uidlist lock, after the changes other writers
// recorded and the changes on disk the folder's directories show are
// taken in, so no other mailagent process or node can change a message
// between them (Dovecot and other outside writers rename without that
// lock; their changes are seen by the sync before the test).
func (f *Folder) StoreFlagsIf(ctx context.Context, uids []uint32, op FlagOp, flags []string, unchangedSince uint64) (changed []Message, failed []uint32, err error) {
	return f.storeFlags(ctx, uids, op, flags, unchangedSince, true)
}

func (f *Folder) storeFlags(ctx context.Context, uids []uint32, op FlagOp, flags []string, since uint64, cond bool) ([]Message, []uint32, error) {
	if err := f.m.check(); err != nil {
		return nil, nil, err
	}
	letters, err := f.m.store.infoFor(ctx, f.st.dir, flags)
	if err != nil {
		return nil, nil, err
	}
	var out []Message
	var failed []uint32
	apply := func(st *folderState) ([]Event, error) {
		if strings.ContainsFunc(letters, func(r rune) bool { return r >= 'a' && r <= 'z' }) {
			st.refreshKeywords() // infoFor may just have added some
		}
		newOK, curOK := st.unchanged()
		release, evs, err := st.lockIndex(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
		st.notify(evs)
		var changed []uint32
		var mod uint64
		for _, uid := range uids {
			e := st.ents[uid]
			if e == nil {
				continue
			}
			if cond && e.modseq > since {
				failed = append(failed, uid)
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
				if mod < st.highestModSeq {
					// First change, or a rescan (a file renamed by
					// someone else) gave a later modseq to what it
					// found: this operation's changes come after it.
					mod = st.newModSeq()
					changed = st.restamp(changed[:len(changed)-1], mod, out)
					changed = append(changed, uid)
				}
				st.setModSeq(e, mod)
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
		ev := []Event{{Kind: EventFlags, UIDs: changed, ModSeq: mod}}
		return ev, st.appendFlagLog(mod, st.flagRecord(mod, changed))
	}
	// A folder already loaded needs no sync first: a stale file name is
	// found out by the rename itself. A conditional store syncs, so that
	// the modseqs it tests include changes made on disk by others.
	st := f.st
	st.mu.Lock()
	if st.loaded && !st.gone && !cond {
		evs, err := apply(st)
		st.notify(evs)
		st.mu.Unlock()
		return out, nil, err
	}
	st.mu.Unlock()
	err = f.do(ctx, false, apply)
	return out, failed, err
}

// restamp gives the messages uids, changed earlier in an operation,
// its modseq mod, in out too, and returns those still in the folder.
func (st *folderState) restamp(uids []uint32, mod uint64, out []Message) []uint32 {
	keep := uids[:0]
	for _, u := range uids {
		if e := st.ents[u]; e != nil {
			st.setModSeq(e, mod)
			keep = append(keep, u)
		}
	}
	for i := range out {
		if slices.Contains(keep, out[i].UID) {
			out[i].ModSeq = mod
		}
	}
	return keep
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

// renameAttempts bounds the rescans of one rename whose file another
// process keeps renaming (Dovecot, a mv) without the dovecot-uidlist
// lock.
const renameAttempts = 10

// rename gives message uid the info letters next(current letters),
// moving it to cur/. If another process renamed or removed the file
// meanwhile, it rescans and recomputes. It returns the entry when it
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
			st.setName(e, info, false, true)
			st.indexDirty = true
			return e, true, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == renameAttempts-1 {
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
		release, evs, err := st.lockIndex(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
		st.notify(evs)
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
		mod := st.newModSeq()
		st.remove(gone, mod)
		st.adoptOwnChange()
		if err := st.rewriteUIDListHeld(); err != nil {
			f.m.store.log.Warn("maildir: rewriting dovecot-uidlist", "dir", st.dir, "err", err)
		}
		return []Event{{Kind: EventExpunged, UIDs: gone, ModSeq: mod}}, st.saveIndexHeld()
	})
	if len(gone) > 0 {
		if qerr := f.m.store.addQuota(f.m.path, -freed, -int64(len(gone))); qerr != nil {
			f.m.store.log.Warn("maildir: updating maildirsize", "path", f.m.path, "err", qerr)
		}
	}
	return gone, err
}

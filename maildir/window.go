package maildir

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"
)

// The dirty window. Two changes to a directory within one tick of the
// clock that stamps it leave the same mtime, so a directory's mtime
// proves that nothing was missed only once a listing has started after
// that tick ended. Until then the recorded stamps are trusted (a later
// change moves the mtime and is seen at once), and the folder is listed
// once more when the window has passed, to catch a change by another
// writer (Dovecot, a mv, another node) hidden in the same tick as a known
// one.
//
// The window depends on the stamps: file systems that keep sub-second
// mtimes (ext4, xfs, btrfs, tmpfs, NFS from those) stamp them from the
// kernel's coarse clock, which ticks every 1–10 ms (1/HZ), so a stamp with
// a sub-second part gets fineWindow. A stamp of whole seconds may come
// from a file system that keeps only seconds and gets dirtyWindow, as
// Dovecot does for every file system.
//
// That one more listing runs in the background (verifyLater), outside the
// folder's lock, and compares the names listed with the state through a
// digest (nameDigest): no command waits for it, and the state is only
// reconciled by a full scan when the digest differs. A sync that finds the
// window passed with no check on the way, or the check late by
// verifyGrace, runs it itself.
const (
	dirtyWindow = time.Second
	fineWindow  = 50 * time.Millisecond
	verifyGrace = time.Second
)

// windowFor returns the dirty window of a directory stamped mtime.
func windowFor(mtime int64) int64 {
	if mtime%int64(time.Second) != 0 {
		return int64(fineWindow)
	}
	return int64(dirtyWindow)
}

// settledAt is when a listing proves the recorded stamps of new/ and
// cur/ complete: the window after the later stamp, and after the instant
// this state saw its own last change in place (ownAt; the directory's
// mtime comes from the file server's clock, ownAt from ours, so the
// later of the two holds whatever the offset between them).
func (f *folderState) settledAt() int64 {
	m := max(f.newStamp.mtime, f.curStamp.mtime)
	w := max(windowFor(f.newStamp.mtime), windowFor(f.curStamp.mtime))
	return max(m, f.ownAt) + w
}

// unsettled reports whether the stamps still await their listing.
func (f *folderState) unsettled() bool {
	return f.scannedAt < f.settledAt()
}

// nameHash is one message file's contribution to a folder's digest: its
// base name, info and directory as a listing reads them (64-bit FNV-1a,
// then mixed so that sums of them spread).
func nameHash(key, info string, inNew, hasInfo bool) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	fl := uint64(0x100)
	if inNew {
		fl |= 1
	}
	if hasInfo {
		fl |= 2
	}
	h = (h ^ fl) * prime
	for i := 0; i < len(info); i++ {
		h = (h ^ uint64(info[i])) * prime
	}
	// splitmix64's finalizer
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

func (f *folderState) hashOf(e *entry) uint64 {
	return nameHash(e.key, e.info, e.inNew, e.hasInfo)
}

// setName records that message e's file is now named by info, inNew and
// hasInfo, keeping the digest current.
func (f *folderState) setName(e *entry, info string, inNew, hasInfo bool) {
	f.digest -= f.hashOf(e)
	e.info, e.inNew, e.hasInfo = info, inNew, hasInfo
	f.digest += f.hashOf(e)
	f.nameGen++
}

// rehash computes the digest of the state's names anew.
func (f *folderState) rehash() {
	f.digest = 0
	for _, e := range f.list {
		f.digest += f.hashOf(e)
	}
	f.nameGen++
}

// nameDigest lists new/ then cur/ and returns the digest and number of the
// message files found, read as readdir reads them (a base name in both
// directories counts twice, so it never matches a state and leads to a
// full scan). It keeps no name: its memory does not grow with the folder.
func (f *folderState) nameDigest() (sum uint64, n int, err error) {
	for _, sub := range [...]string{"new", "cur"} {
		d, err := os.Open(filepath.Join(f.dir, sub))
		if err != nil {
			return 0, 0, err
		}
		for {
			names, err := d.Readdirnames(1024)
			for _, name := range names {
				if base, l, ok := listed(sub, name); ok {
					sum += nameHash(base, l.info, l.inNew, l.hasInfo)
					n++
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				d.Close()
				return 0, 0, err
			}
		}
		d.Close()
	}
	return sum, n, nil
}

// sortedUnique reports whether info is already as normInfo makes it.
func sortedUnique(info string) bool {
	for i := 1; i < len(info); i++ {
		if info[i] <= info[i-1] {
			return false
		}
	}
	return true
}

// verifyHeld is a listing run under f.mu (the dirty window's, or the
// first after the index was loaded): it reports whether the folder's
// files are the ones the state knows, with the directories' stamps stN
// and stC (taken before it, at now) unchanged, and then records them as
// listed at now. The caller scans when it is not.
func (f *folderState) verifyHeld(now int64, stN, stC fileStamp) bool {
	sum, n, err := f.nameDigest()
	if err != nil || sum != f.digest || n != len(f.list) {
		return false
	}
	if n, ok := statStamp(filepath.Join(f.dir, "new")); !ok || n != stN {
		return false
	}
	if c, ok := statStamp(filepath.Join(f.dir, "cur")); !ok || c != stC {
		return false
	}
	f.newStamp, f.curStamp, f.scannedAt = stN, stC, now
	f.baseStale = true // the index's stamps and scan time are behind
	return true
}

// verifyLater arranges the dirty window's listing in the background for
// when the window of the current stamps has passed, unless one is
// arranged already or none is needed.
func (f *folderState) verifyLater() {
	if f.verifyArmed || f.verifyStopped || f.gone || !f.unsettled() {
		return
	}
	f.verifyArmed = true
	d := time.Duration(f.settledAt() - f.s.opts.now().UnixNano())
	f.verifyTimer = time.AfterFunc(max(d, 0), f.verifyNow)
}

// verifyNow is verifyLater's timer: it lists the folder outside f.mu and
// compares under it. A change made meanwhile (by this state or seen in
// the stamps) leaves the check to a later one or to the sync that sees
// the stamps moved; a listing that differs from the state is a change
// hidden in a tick, which a full scan takes in and announces.
func (f *folderState) verifyNow() {
	f.vmu.Lock()
	defer f.vmu.Unlock()
	f.mu.Lock()
	f.verifyArmed = false
	if f.verifyStopped || f.gone || !f.loaded || !f.unsettled() {
		f.mu.Unlock()
		return
	}
	now := f.s.opts.now().UnixNano()
	if now < f.settledAt() {
		f.verifyLater()
		f.mu.Unlock()
		return
	}
	f.verifyArmed = true // the listing is on its way
	gen, stN, stC, settled := f.nameGen, f.newStamp, f.curStamp, f.settledAt()
	f.mu.Unlock()

	sum, n, err := f.nameDigest()
	n2, ok1 := statStamp(filepath.Join(f.dir, "new"))
	c2, ok2 := statStamp(filepath.Join(f.dir, "cur"))

	f.mu.Lock()
	defer f.mu.Unlock()
	f.verifyArmed = false
	if f.verifyStopped || f.gone || !f.loaded || err != nil || !ok1 || !ok2 {
		return
	}
	same := f.nameGen == gen && f.newStamp == stN && f.curStamp == stC && n2 == stN && c2 == stC
	switch {
	case same && f.scannedAt >= settled:
		// Scanned meanwhile.
	case same && sum == f.digest && n == len(f.list):
		f.scannedAt = now
		f.baseStale = true
	case same:
		evs, err := f.sync(context.Background(), true)
		f.notify(evs)
		if err != nil {
			f.s.log.Debug("maildir: background check", "dir", f.dir, "err", err)
		}
	default:
		f.verifyLater()
	}
}

// stopVerify ends the background checks of the folder for good and waits
// for one running to finish.
func (f *folderState) stopVerify() {
	f.mu.Lock()
	f.verifyStopped = true
	if f.verifyTimer != nil {
		f.verifyTimer.Stop()
	}
	f.mu.Unlock()
	f.vmu.Lock() // a check running holds it
	f.vmu.Unlock()
}

package maildir

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// cacheName is the per-folder cache of data derived from message files
// (the MIME structure IMAP's BODYSTRUCTURE and BODY[section] are served
// from), so that a message is parsed once, not on every fetch, and again
// after a restart. Records are appended under the dovecot-uidlist lock;
// the index (entry.cacheOff) says where each message's record is. A
// record names the message's UID, base name, file size and mtime, and
// is used only while they match the message file: a file changed in
// place is parsed again. A record cut short by a crash fails its
// checksum and is computed again.
//
//	"MAILAGENT-CACHE 1 " gen "\n"
//	records: len payload crc32(payload)
//	payload: uid key size mtime data
//
// When the file outgrows maxCacheFile it is started afresh under a new
// generation (records of expunged messages are dropped that way).
const cacheName = "mailagent.cache"

const cacheMagic = "MAILAGENT-CACHE 1 "

// maxCacheRecord bounds one cached value.
const maxCacheRecord = 16 << 20

// maxCacheFile is the size at which the cache file is started afresh.
func (f *folderState) maxCacheFile() int64 { return 64<<20 + int64(len(f.list))*16<<10 }

// cacheRec is a record's identity: what the cached data was derived
// from.
type cacheRec struct {
	uid   uint32
	key   string
	size  int64
	mtime int64
}

// Cached returns the cached data of message uid, whose file fh the
// caller opened (Open), or computes it with compute and stores it. The
// data is stored only while the file keeps the size and mtime it had
// when compute read it; a message that was expunged meanwhile gets its
// data computed and not stored. compute's error is returned as is.
func (f *Folder) Cached(ctx context.Context, uid uint32, fh *os.File, compute func() ([]byte, error)) ([]byte, error) {
	return f.CachedUpdate(ctx, uid, fh, func(cached []byte) ([]byte, bool, error) {
		if cached != nil {
			return cached, false, nil
		}
		data, err := compute()
		return data, true, err
	})
}

// CachedUpdate is Cached for data that grows: update gets the cached
// data of message uid (nil when there is none) and returns the data to
// use and whether to store it in place of the cached record, so that a
// record can be extended (a text preview added to a MIME structure)
// or only looked up. update's error is returned as is.
func (f *Folder) CachedUpdate(ctx context.Context, uid uint32, fh *os.File, update func(cached []byte) ([]byte, bool, error)) ([]byte, error) {
	if err := f.m.check(); err != nil {
		return nil, err
	}
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	st := f.st
	st.mu.Lock()
	e := st.ents[uid]
	var want cacheRec
	var off uint64
	gen := st.cacheGen
	if e != nil {
		want = cacheRec{uid: uid, key: e.key, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
		off = e.cacheOff
	}
	st.mu.Unlock()
	var cached []byte
	if e != nil && off > 0 && gen != "" {
		if data, ok := readCacheRecord(filepath.Join(st.dir, cacheName), gen, off, want); ok {
			cached = data
		}
	}
	data, store, err := update(cached)
	if err != nil || !store || e == nil || len(data) > maxCacheRecord {
		return data, err
	}
	if err := f.storeCached(ctx, want, data); err != nil {
		f.m.store.log.Warn("maildir: writing cache", "dir", st.dir, "err", err)
	}
	return data, nil
}

// readCacheRecord reads the record at off of the cache file of
// generation gen, if it is the record of want.
func readCacheRecord(p, gen string, off uint64, want cacheRec) ([]byte, bool) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, false
	}
	defer fh.Close()
	hdr := cacheMagic + gen + "\n"
	got := make([]byte, len(hdr))
	if _, err := io.ReadFull(fh, got); err != nil || string(got) != hdr || off < uint64(len(hdr)) {
		return nil, false
	}
	r := bufio.NewReader(io.NewSectionReader(fh, int64(off), maxCacheRecord+64))
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxCacheRecord+1024 {
		return nil, false
	}
	rec := make([]byte, n+4)
	if _, err := io.ReadFull(r, rec); err != nil {
		return nil, false
	}
	payload := rec[:n]
	if crc32.ChecksumIEEE(payload) != binary.LittleEndian.Uint32(rec[n:]) {
		return nil, false
	}
	d := &indexReader{b: payload}
	id := cacheRec{uid: uint32(d.uvarint()), key: d.str(), size: int64(d.uvarint()), mtime: d.varint()}
	if d.err != nil || id != want {
		return nil, false
	}
	return d.b, true
}

// storeCached appends data as the record of msg and points the index at
// it.
func (f *Folder) storeCached(ctx context.Context, msg cacheRec, data []byte) error {
	return f.appendCache(ctx, func(st *folderState, fh *os.File, end uint64) error {
		if e := st.ents[msg.uid]; e == nil || e.key != msg.key {
			return nil
		}
		rec := frameRecord(append(msg.payload(), data...))
		// No fsync: a record lost in a crash is computed again.
		if _, err := fh.Write(rec); err != nil {
			return err
		}
		e := st.ents[msg.uid]
		e.cacheOff = end
		dirty := st.indexDirty
		_, err := st.appendLog(false, st.cacheRecord(msg.uid, e.cacheOff))
		st.indexDirty = st.indexDirty || dirty
		return err
	})
}

// appendCache calls write with the cache file open for appending, its
// size, and the state up to date under the dovecot-uidlist lock.
func (f *Folder) appendCache(ctx context.Context, write func(st *folderState, fh *os.File, end uint64) error) error {
	st := f.st
	st.mu.Lock()
	defer st.mu.Unlock()
	release, evs, err := st.lockIndex(ctx)
	if err != nil {
		return err
	}
	defer release()
	st.notify(evs)
	fh, err := st.openCache(filepath.Join(st.dir, cacheName))
	if err != nil {
		return err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return err
	}
	return write(st, fh, uint64(fi.Size()))
}

// payload is the start of a cache record's payload: what it was derived
// from. The data follows.
func (r cacheRec) payload() []byte {
	p := binary.AppendUvarint(nil, uint64(r.uid))
	p = appendStr(p, r.key)
	p = binary.AppendUvarint(p, uint64(r.size))
	return binary.AppendVarint(p, r.mtime)
}

// openCache opens the cache file for appending: the generation on disk
// if there is one (another writer may have started it), else a new one;
// a file grown past maxCacheFile is started afresh. Offsets of another
// generation are forgotten. The caller holds the lock.
func (st *folderState) openCache(p string) (*os.File, error) {
	fh, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
	if err == nil {
		var hdr [len(cacheMagic) + 33]byte
		n, _ := fh.ReadAt(hdr[:], 0)
		gen, ok := bytes.CutPrefix(hdr[:n], []byte(cacheMagic))
		fi, serr := fh.Stat()
		if ok && len(gen) == 33 && gen[32] == '\n' && serr == nil && fi.Size() < st.maxCacheFile() {
			st.adoptCacheGen(string(gen[:32]))
			return fh, nil
		}
		fh.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	gen := newGUID()
	if err := writeFileAtomic(p, []byte(cacheMagic+gen+"\n"), false); err != nil {
		return nil, err
	}
	st.adoptCacheGen(gen)
	return os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
}

func (st *folderState) adoptCacheGen(gen string) {
	if gen == st.cacheGen {
		return
	}
	st.cacheGen = gen
	for _, e := range st.list {
		e.cacheOff, e.fieldsOff = 0, 0
	}
	st.baseStale = true
}

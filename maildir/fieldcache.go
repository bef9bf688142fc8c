package maildir

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// fieldsMark starts the data of a header-fields record in
// mailagent.cache, telling it from the MIME-structure record of the same
// message (both name the same file); the caller's version follows.
const fieldsMark = 'H'

// maxFieldsRecord bounds one message's header-fields data: larger data
// is returned but not stored.
const maxFieldsRecord = 64 << 10

// maxFieldsLogged is how many new records one log record may point at;
// more are recorded by writing the index whole.
const maxFieldsLogged = 1024

// CachedFields returns, for each message of uids in order, the data
// compute derives from the message file (IMAP's SORT and THREAD keep
// the header fields they compare there), nil for a UID not in the folder
// or a file that cannot be read. The data comes from mailagent.cache
// where it holds a record for the message as the index knows it (base
// name, size and date); the others are computed, from the open file, and
// stored. The cached records are read in one pass over the cache file and
// the new ones appended in one write under one lock: a command over a
// large folder costs neither an open nor a lock per message once its
// records are there. version is the caller's format of the data: a
// record of another version is computed again (and replaced). compute's
// error for one message leaves that message's data nil; a canceled ctx
// ends the call with its error.
func (f *Folder) CachedFields(ctx context.Context, uids []uint32, version byte, compute func(r io.Reader) ([]byte, error)) ([][]byte, error) {
	if err := f.m.check(); err != nil {
		return nil, err
	}
	if err := f.do(ctx, false, nil); err != nil { // loaded and current
		return nil, err
	}
	st := f.st
	type want struct {
		i   int
		rec cacheRec
		off uint64
	}
	var wants []want
	st.mu.Lock()
	gen := st.cacheGen
	for i, u := range uids {
		if e := st.ents[u]; e != nil {
			wants = append(wants, want{i: i, rec: cacheRec{uid: u, key: e.key, size: e.size, mtime: e.mtime}, off: e.fieldsOff})
		}
	}
	st.mu.Unlock()
	out := make([][]byte, len(uids))
	if gen != "" {
		var cached []fieldsAt
		for _, w := range wants {
			if w.off > 0 {
				cached = append(cached, fieldsAt{i: w.i, rec: w.rec, off: w.off})
			}
		}
		readFieldsRecords(filepath.Join(st.dir, cacheName), gen, version, cached, out)
	}
	var fresh []fieldsAt
	for _, w := range wants {
		if out[w.i] != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fh, _, err := f.Open(ctx, w.rec.uid)
		if err != nil {
			if errors.Is(err, ErrNoMessage) {
				continue
			}
			return nil, err
		}
		data, err := compute(fh)
		fh.Close()
		if err != nil {
			continue
		}
		if data == nil {
			data = []byte{}
		}
		out[w.i] = data
		if len(data) <= maxFieldsRecord {
			fresh = append(fresh, fieldsAt{i: w.i, rec: w.rec})
		}
	}
	if len(fresh) > 0 {
		if err := f.storeFields(ctx, version, fresh, out); err != nil {
			f.m.store.log.Warn("maildir: writing cache", "dir", st.dir, "err", err)
		}
	}
	return out, nil
}

// fieldsAt is a message's header-fields record: what it must name, and
// where it is (or the index of its data in the caller's slice).
type fieldsAt struct {
	i   int
	rec cacheRec
	off uint64
}

// readFieldsRecords reads, in one pass over the cache file of generation
// gen, the records at recs' offsets into out[rec.i], each only if it is
// the header-fields record of version of what rec names.
func readFieldsRecords(p, gen string, version byte, recs []fieldsAt, out [][]byte) {
	if len(recs) == 0 {
		return
	}
	fh, err := os.Open(p)
	if err != nil {
		return
	}
	defer fh.Close()
	hdr := cacheMagic + gen + "\n"
	br := bufio.NewReaderSize(fh, 256<<10)
	got := make([]byte, len(hdr))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != hdr {
		return
	}
	pos := uint64(len(hdr))
	var slab []byte // records are carved from shared blocks
	slices.SortFunc(recs, func(a, b fieldsAt) int { return cmp.Compare(a.off, b.off) })
	for _, r := range recs {
		if r.off < pos {
			continue // a damaged index: two records at one place
		}
		if r.off-pos > 1<<40 {
			return
		}
		n, err := br.Discard(int(r.off - pos))
		pos += uint64(n)
		if err != nil {
			return
		}
		data, used, ok := readRecordAt(br, &slab)
		pos += used
		if !ok {
			if used == 0 {
				return
			}
			continue
		}
		d := &indexReader{b: data}
		id := cacheRec{uid: uint32(d.uvarint()), key: d.str(), size: int64(d.uvarint()), mtime: d.varint()}
		if d.err != nil || id != r.rec || len(d.b) < 2 || d.b[0] != fieldsMark || d.b[1] != version {
			continue
		}
		out[r.i] = d.b[2:]
	}
}

// readRecordAt reads one framed record (length, payload, CRC-32) from
// br: the payload, the bytes consumed, and whether the record was whole
// and its checksum right. used is 0 when nothing could be read. Small
// payloads are carved from *slab, which it refills as needed.
func readRecordAt(br *bufio.Reader, slab *[]byte) (payload []byte, used uint64, ok bool) {
	var l uint64
	var shift uint
	for {
		c, err := br.ReadByte()
		if err != nil {
			return nil, used, false
		}
		used++
		l |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
		if shift += 7; shift > 35 {
			return nil, used, false
		}
	}
	if l > maxCacheRecord+1024 {
		return nil, used, false
	}
	var rec []byte
	if l+4 <= 4<<10 {
		if len(*slab) < int(l+4) {
			*slab = make([]byte, 64<<10)
		}
		rec, *slab = (*slab)[:l+4:l+4], (*slab)[l+4:]
	} else {
		rec = make([]byte, l+4)
	}
	n, err := io.ReadFull(br, rec)
	used += uint64(n)
	if err != nil {
		return nil, used, false
	}
	if crc32.ChecksumIEEE(rec[:l]) != binary.LittleEndian.Uint32(rec[l:]) {
		return nil, used, false
	}
	return rec[:l], used, true
}

// storeFields appends the records of fresh (data in out) to the cache
// file in one write and points the index at them: one log record for a
// few, the index written whole for many.
func (f *Folder) storeFields(ctx context.Context, version byte, fresh []fieldsAt, out [][]byte) error {
	return f.appendCache(ctx, func(st *folderState, fh *os.File, end uint64) error {
		var buf []byte
		var placed []fieldsAt
		for _, r := range fresh {
			e := st.ents[r.rec.uid]
			if e == nil || e.key != r.rec.key || e.size != r.rec.size || e.mtime != r.rec.mtime {
				continue // expunged or changed meanwhile
			}
			payload := append(r.rec.payload(), fieldsMark, version)
			r.off = end + uint64(len(buf))
			placed = append(placed, r)
			buf = append(buf, frameRecord(append(payload, out[r.i]...))...)
		}
		if len(placed) == 0 {
			return nil
		}
		// No fsync: a record lost in a crash is computed again.
		if _, err := fh.Write(buf); err != nil {
			return err
		}
		for _, r := range placed {
			st.ents[r.rec.uid].fieldsOff = r.off
		}
		if len(placed) > maxFieldsLogged {
			return st.saveIndexHeld()
		}
		dirty := st.indexDirty
		_, err := st.appendLog(false, st.fieldsRecord(placed))
		st.indexDirty = st.indexDirty || dirty
		return err
	})
}

// fieldsRecord is the log record of header-fields records placed in
// mailagent.cache of the current generation.
func (f *folderState) fieldsRecord(placed []fieldsAt) []byte {
	p := appendStr([]byte{'D'}, f.cacheGen)
	p = binary.AppendUvarint(p, uint64(len(placed)))
	for _, r := range placed {
		p = binary.AppendUvarint(p, uint64(r.rec.uid))
		p = appendStr(p, r.rec.key)
		p = binary.AppendUvarint(p, r.off)
	}
	return p
}

// applyFieldsRecord applies a 'D' log record (without its kind byte).
func (f *folderState) applyFieldsRecord(r *indexReader) {
	gen, n := r.str(), r.uvarint()
	if r.err != nil || gen == "" || n > uint64(len(r.b)) {
		return
	}
	f.adoptCacheGen(gen)
	for range n {
		uid, key, off := r.uvarint(), r.str(), r.uvarint()
		if r.err != nil {
			return
		}
		if e := f.ents[uint32(uid)]; e != nil && uid <= 1<<32-1 && e.key == key {
			e.fieldsOff = off
		}
	}
}

package maildir

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
)

// indexName is mailagent's per-folder index: what a scan of new/ and cur/
// found, with sizes and dates, and the directory stamps it is valid for;
// per message its modification sequence, save date and where its cached
// MIME structure is (mailagent.cache); the folder's highest modseq and
// its expunge records. It is written only under the dovecot-uidlist
// lock, durably (see modseq.go). Anything wrong with it costs one rescan
// and a full resynchronisation of CONDSTORE clients, never mail.
//
// Version 4 layout (integers are varints, strings length-prefixed);
// version 3, still read, lacks fieldsoff:
//
//	"MAILAGENT-INDEX 4\n"
//	uidvalidity nextuid  4×(mtime size ino) of new/ cur/ uidlist keywords
//	scannedAt guid  nkeywords keyword...
//	highestmodseq expungefloor cachegen loggen  nexpunged (uid modseq)...
//	nmessages (uiddelta key info flags size vsize mtime modseq savedate cacheoff fieldsoff emailid)...
//	crc32 (little endian, of all that precedes)
const indexName = "mailagent.index"

const indexMagic = "MAILAGENT-INDEX 4\n"

// indexMagic3 is the previous version, read as well: the same without
// the messages' fieldsoff.
const indexMagic3 = "MAILAGENT-INDEX 3\n"

var errBadIndex = errors.New("maildir: corrupt index")

// maxIndexSize bounds what is read of an index.
const maxIndexSize = 512 << 20

func (f *folderState) marshalIndex() []byte {
	b := make([]byte, 0, 128+len(f.list)*80)
	b = append(b, indexMagic...)
	b = binary.AppendUvarint(b, uint64(f.uidValidity))
	b = binary.AppendUvarint(b, uint64(f.nextUID))
	for _, st := range []fileStamp{f.newStamp, f.curStamp, f.ulStamp, f.kwStamp} {
		b = binary.AppendVarint(b, st.mtime)
		b = binary.AppendVarint(b, st.size)
		b = binary.AppendUvarint(b, st.ino)
	}
	b = binary.AppendVarint(b, f.scannedAt)
	b = appendStr(b, f.guid)
	b = binary.AppendUvarint(b, uint64(len(f.keywords)))
	for _, k := range f.keywords {
		b = appendStr(b, k)
	}
	b = binary.AppendUvarint(b, f.highestModSeq)
	b = binary.AppendUvarint(b, f.expungeFloor)
	b = appendStr(b, f.cacheGen)
	b = appendStr(b, f.logGen)
	b = binary.AppendUvarint(b, uint64(len(f.expunged)))
	for _, x := range f.expunged {
		b = binary.AppendUvarint(b, uint64(x.uid))
		b = binary.AppendUvarint(b, x.modseq)
	}
	b = binary.AppendUvarint(b, uint64(len(f.list)))
	var prev uint32
	for _, e := range f.list {
		b = binary.AppendUvarint(b, uint64(e.uid-prev))
		prev = e.uid
		b = appendStr(b, e.key)
		b = appendStr(b, e.info)
		var fl byte
		if e.inNew {
			fl |= 1
		}
		if e.hasInfo {
			fl |= 2
		}
		if e.recent {
			fl |= 4
		}
		b = append(b, fl)
		b = binary.AppendUvarint(b, uint64(e.size))
		b = binary.AppendUvarint(b, uint64(e.vsize))
		b = binary.AppendVarint(b, e.mtime)
		b = binary.AppendUvarint(b, e.modseq)
		b = binary.AppendVarint(b, e.saveDate)
		b = binary.AppendUvarint(b, e.cacheOff)
		b = binary.AppendUvarint(b, e.fieldsOff)
		b = appendStr(b, e.emailID)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// indexReader decodes an index; the first error sticks.
type indexReader struct {
	b   []byte
	err error
}

func (r *indexReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBadIndex
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *indexReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errBadIndex
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *indexReader) str() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) || n > 4096 {
		r.err = errBadIndex
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *indexReader) byte1() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errBadIndex
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// parseIndex decodes data into f (which must be reset).
func (f *folderState) parseIndex(data []byte) error {
	if len(data) < len(indexMagic)+4 {
		return errBadIndex
	}
	v3 := string(data[:len(indexMagic3)]) == indexMagic3
	if !v3 && string(data[:len(indexMagic)]) != indexMagic {
		return errBadIndex
	}
	body := data[:len(data)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return errBadIndex
	}
	r := &indexReader{b: body[len(indexMagic):]}
	uv := r.uvarint()
	next := r.uvarint()
	var st [4]fileStamp
	for i := range st {
		st[i] = fileStamp{mtime: r.varint(), size: r.varint(), ino: r.uvarint()}
	}
	scanned := r.varint()
	guid := r.str()
	nk := r.uvarint()
	if nk > maxKeywords {
		return errBadIndex
	}
	kw := make([]string, 0, nk)
	for range nk {
		kw = append(kw, r.str())
	}
	highest := r.uvarint()
	floor := r.uvarint()
	cacheGen := r.str()
	logGen := r.str()
	nx := r.uvarint()
	if r.err != nil || nx > maxExpungeRecords {
		return errBadIndex
	}
	var expunged []expungeRec
	for range nx {
		u, m := r.uvarint(), r.uvarint()
		if r.err != nil || u == 0 || u > 1<<32-1 || m > highest {
			return errBadIndex
		}
		expunged = append(expunged, expungeRec{uid: uint32(u), modseq: m})
	}
	n := r.uvarint()
	if r.err != nil || uv == 0 || uv > 1<<32-1 || next > 1<<32-1 || n > uint64(len(r.b)) {
		return errBadIndex
	}
	f.dropHeld()
	f.ents = make(map[uint32]*entry, n)
	f.byKey = make(map[string]uint32, n)
	f.list = make([]*entry, 0, n)
	f.digest = 0
	var uid uint32
	for range n {
		d := r.uvarint()
		if d == 0 || uint64(uid)+d >= next {
			return errBadIndex
		}
		uid += uint32(d)
		e := &entry{key: r.str(), info: r.str()}
		fl := r.byte1()
		e.inNew, e.hasInfo, e.recent = fl&1 != 0, fl&2 != 0, fl&4 != 0
		e.size, e.vsize = int64(r.uvarint()), int64(r.uvarint())
		e.mtime = r.varint()
		e.modseq, e.saveDate, e.cacheOff = r.uvarint(), r.varint(), r.uvarint()
		if !v3 {
			e.fieldsOff = r.uvarint()
		}
		e.emailID = r.str()
		if r.err != nil || !validBase(e.key) || e.modseq == 0 || e.modseq > highest {
			return errBadIndex
		}
		if _, dup := f.byKey[e.key]; dup {
			return errBadIndex
		}
		f.add(uid, e)
	}
	if r.err != nil || len(r.b) != 0 {
		return errBadIndex
	}
	f.uidValidity, f.nextUID, f.guid = uint32(uv), uint32(next), guid
	f.newStamp, f.curStamp, f.ulStamp, f.kwStamp = st[0], st[1], st[2], st[3]
	f.scannedAt = scanned
	f.keywords = kw
	f.highestModSeq, f.expungeFloor, f.cacheGen, f.expunged = highest, floor, cacheGen, expunged
	f.logGen, f.logOff = logGen, 0
	f.logBoot, f.ceiling = "", 0
	f.rebuildModOrder()
	f.indexDirty = false
	return nil
}

// loadIndex fills the state from the index file; false means no usable
// index (the state is then empty and a full scan rebuilds it).
func (f *folderState) loadIndex() bool {
	p := filepath.Join(f.dir, indexName)
	st, err := os.Stat(p)
	if err != nil || st.Size() > maxIndexSize {
		return false
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	f.idxStamp = stampOf(st)
	if err := f.parseIndex(data); err != nil {
		f.s.log.Warn("maildir: damaged index, rebuilding", "dir", f.dir)
		f.reset()
		return false
	}
	f.replayIndexLog()
	f.indexDirty = false // what the log added is on disk
	// The index is trusted only as far as dovecot-uidlist agrees with it:
	// the same file it was written with (its stamp, and since a stamp can
	// repeat across a rewrite, its header and last record showing this
	// UIDVALIDITY and no UID the index lacks), or at least the same
	// UIDVALIDITY.
	if ul, ok := statStamp(filepath.Join(f.dir, uidlistName)); !ok || ul != f.ulStamp || !f.uidListWithin(f.nextUID) {
		u, err := f.readUIDList()
		if err != nil || u == nil || u.uidValidity != f.uidValidity {
			f.reset()
			f.uidValidity, f.nextUID = 0, 0
			return false
		}
		f.nextUID = max(f.nextUID, u.nextUID)
	}
	return true
}

// saveIndex writes the index under the dovecot-uidlist lock, after
// taking in what other writers stored (returned as events); failure is
// logged, not fatal: the index is rebuilt from the directories.
func (f *folderState) saveIndex(ctx context.Context) []Event {
	release, evs, err := f.lockIndex(ctx)
	if err != nil {
		f.s.log.Warn("maildir: locking to write index", "dir", f.dir, "err", err)
		return nil
	}
	defer release()
	if err := f.saveIndexHeld(); err != nil {
		f.s.log.Warn("maildir: writing index", "dir", f.dir, "err", err)
	}
	return evs
}

// saveIndexHeld writes the index durably (write, fsync, rename, fsync of
// the directory: a modseq once reported never goes back) as a new
// generation with an empty log. The caller holds the dovecot-uidlist
// lock and has merged what is on disk (lockIndex).
func (f *folderState) saveIndexHeld() error {
	p := filepath.Join(f.dir, indexName)
	f.logGen = newGUID()
	if err := writeFileAtomic(p, f.marshalIndex(), true); err != nil {
		return err
	}
	if st, ok := statStamp(p); ok {
		f.idxStamp = st
	}
	f.indexDirty, f.baseStale = false, false
	return f.startIndexLog()
}

package maildir

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// indexLogName is the append-only companion of mailagent.index: flag
// changes and new messages since the index was last written whole, so
// that a STORE, an APPEND or a delivery costs one appended record and one
// fsync rather than a rewrite of an index of every message. Its first line names the index generation it extends;
// a log of another generation is stale (its records are in the index)
// and ignored. It is appended to, like the index is written, only under
// the dovecot-uidlist lock; a record cut short by a crash fails its
// checksum and ends the log.
//
//	"MAILAGENT-INDEXLOG 1 " gen "\n"
//	records: len payload crc32(payload)
//	payload 'F': modseq n (uid info)...            flags changed
//	payload 'N': modseq n (uid key info flags size vsize mtime savedate emailid)...  added
//	payload 'C': cachegen uid key offset        a message's record in mailagent.cache
//	payload 'B': bootid ceiling                 a boot mark (flagdurability.go)
//	payload 'D': cachegen n (uid key offset)... messages' header-fields records in mailagent.cache
const indexLogName = "mailagent.index.log"

const indexLogMagic = "MAILAGENT-INDEXLOG 1 "

// maxIndexLog is the log size above which a change rewrites the index
// whole instead (which starts an empty log).
func (f *folderState) maxIndexLog() int64 { return 64<<10 + int64(len(f.list))*16 }

func (f *folderState) indexLogHeader() []byte {
	return []byte(indexLogMagic + f.logGen + "\n")
}

// replayIndexLog applies the log's records beyond what this state has
// read. It returns the UIDs whose flags it changed and those it added,
// and other true when the log extends another index generation than
// this state's: the index was replaced since this state read it (or a
// crash came between writing an index and starting its log).
func (f *folderState) replayIndexLog() (changed, added []uint32, other bool) {
	if f.logGen == "" {
		return nil, nil, false
	}
	fh, err := os.Open(filepath.Join(f.dir, indexLogName))
	if err != nil {
		return nil, nil, false
	}
	defer fh.Close()
	hdr := f.indexLogHeader()
	got := make([]byte, len(hdr))
	if _, err := io.ReadFull(fh, got); err != nil || !bytes.Equal(got, hdr) {
		return nil, nil, true
	}
	st, err := fh.Stat()
	if err != nil || st.Size() > maxIndexSize {
		return nil, nil, false
	}
	off := max(f.logOff, int64(len(hdr)))
	if st.Size() <= off {
		return nil, nil, false
	}
	data := make([]byte, st.Size()-off)
	n, _ := fh.ReadAt(data, off)
	data = data[:n]
	for len(data) > 0 {
		l, k := binary.Uvarint(data)
		if k <= 0 || l > uint64(len(data)-k) || uint64(len(data)-k)-l < 4 {
			break
		}
		payload := data[k : k+int(l)]
		if crc32.ChecksumIEEE(payload) != binary.LittleEndian.Uint32(data[k+int(l):]) {
			break
		}
		c, a := f.applyLogRecord(payload)
		changed, added = append(changed, c...), append(added, a...)
		rec := k + int(l) + 4
		data = data[rec:]
		off += int64(rec)
	}
	f.logOff = off
	return changed, added, false
}

// applyLogRecord applies one record: 'F' flag changes, 'N' messages
// added. It returns the UIDs whose flags changed and those added.
func (f *folderState) applyLogRecord(p []byte) (changed, added []uint32) {
	if len(p) == 0 || p[0] != 'F' && p[0] != 'N' && p[0] != 'C' && p[0] != 'B' && p[0] != 'D' {
		return nil, nil // a kind this version does not know
	}
	kind := p[0]
	r := &indexReader{b: p[1:]}
	if kind == 'D' {
		f.applyFieldsRecord(r)
		return nil, nil
	}
	if kind == 'B' {
		boot, c := r.str(), r.uvarint()
		if r.err == nil && boot != "" {
			f.logBoot, f.ceiling = boot, c
		}
		return nil, nil
	}
	if kind == 'C' {
		gen, uid, key, off := r.str(), r.uvarint(), r.str(), r.uvarint()
		if r.err != nil || gen == "" {
			return nil, nil
		}
		// Records come in order: a record of another generation means
		// the cache file was started afresh since.
		f.adoptCacheGen(gen)
		if e := f.ents[uint32(uid)]; e != nil && e.key == key {
			e.cacheOff = off
		}
		return nil, nil
	}
	mod := r.uvarint()
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) || mod == 0 {
		return nil, nil
	}
	f.highestModSeq = max(f.highestModSeq, mod)
	for range n {
		uid := r.uvarint()
		if kind == 'N' {
			e := &entry{key: r.str(), info: r.str()}
			fl := r.byte1()
			e.inNew, e.hasInfo = fl&1 != 0, fl&2 != 0
			e.size, e.vsize, e.mtime = int64(r.uvarint()), int64(r.uvarint()), r.varint()
			e.saveDate, e.emailID = r.varint(), r.str()
			if r.err != nil || uid == 0 || uid >= 1<<32-1 || !validBase(e.key) || f.ents[uint32(uid)] != nil {
				continue
			}
			if _, dup := f.byKey[e.key]; dup {
				continue
			}
			f.add(uint32(uid), e)
			f.setModSeq(e, mod)
			f.nextUID = max(f.nextUID, uint32(uid)+1)
			added = append(added, e.uid)
			continue
		}
		info := r.str()
		if r.err != nil {
			break
		}
		e := f.ents[uint32(uid)]
		if e == nil || uid > 1<<32-1 || e.modseq >= mod {
			continue
		}
		if e.info != info || e.inNew {
			f.setName(e, info, false, true)
			changed = append(changed, e.uid)
		}
		f.setModSeq(e, mod)
	}
	return changed, added
}

// flagRecord is the log record of flag changes to uids at modseq mod.
func (f *folderState) flagRecord(mod uint64, uids []uint32) []byte {
	p := []byte{'F'}
	p = binary.AppendUvarint(p, mod)
	p = binary.AppendUvarint(p, uint64(len(uids)))
	for _, u := range uids {
		p = binary.AppendUvarint(p, uint64(u))
		p = appendStr(p, f.ents[u].info)
	}
	return p
}

// newRecord is the log record of messages uids added at modseq mod.
func (f *folderState) newRecord(mod uint64, uids []uint32) []byte {
	p := []byte{'N'}
	p = binary.AppendUvarint(p, mod)
	p = binary.AppendUvarint(p, uint64(len(uids)))
	for _, u := range uids {
		e := f.ents[u]
		p = binary.AppendUvarint(p, uint64(u))
		p = appendStr(p, e.key)
		p = appendStr(p, e.info)
		var fl byte
		if e.inNew {
			fl |= 1
		}
		if e.hasInfo {
			fl |= 2
		}
		p = append(p, fl)
		p = binary.AppendUvarint(p, uint64(e.size))
		p = binary.AppendUvarint(p, uint64(e.vsize))
		p = binary.AppendVarint(p, e.mtime)
		p = binary.AppendVarint(p, e.saveDate)
		p = appendStr(p, e.emailID)
	}
	return p
}

// appendIndexLog appends records (flagRecord, newRecord) durably, with
// one write and one fsync. It writes the index whole instead when there
// is no log of the current generation yet or the log is long. The
// caller holds the lock and has merged (lockIndex).
func (f *folderState) appendIndexLog(records ...[]byte) error {
	_, err := f.appendLog(true, records...)
	return err
}

// cacheRecord is the log record of message uid's cache record at off
// in mailagent.cache of the current generation. It is appended without
// an fsync: a record lost in a crash costs one parse.
func (f *folderState) cacheRecord(uid uint32, off uint64) []byte {
	p := []byte{'C'}
	p = appendStr(p, f.cacheGen)
	p = binary.AppendUvarint(p, uint64(uid))
	p = appendStr(p, f.ents[uid].key)
	return binary.AppendUvarint(p, off)
}

// appendLog appends records, with an fsync if durable. appended is
// false when it wrote the index whole instead (no log of the current
// generation yet, or a long one), which holds every change durably.
func (f *folderState) appendLog(durable bool, records ...[]byte) (appended bool, err error) {
	p := filepath.Join(f.dir, indexLogName)
	if f.logGen == "" || f.logOff == 0 || f.logOff > f.maxIndexLog() {
		return false, f.saveIndexHeld()
	}
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, f.saveIndexHeld()
	}
	if err != nil {
		return false, err
	}
	defer fh.Close()
	if st, err := fh.Stat(); err != nil || st.Size() != f.logOff {
		// Not the log this state read up to (replaced, or cut).
		return false, f.saveIndexHeld()
	}
	var buf []byte
	for _, r := range records {
		buf = append(buf, frameRecord(r)...)
	}
	if _, err := fh.Write(buf); err != nil {
		return false, err
	}
	if durable {
		if err := fh.Sync(); err != nil {
			return false, err
		}
	}
	f.logOff += int64(len(buf))
	// Every change is in the log; the index itself is behind until it is
	// next written whole.
	f.indexDirty, f.baseStale = false, true
	return true, nil
}

// startIndexLog creates the empty log of a new index generation, after
// the index naming it was written. The caller holds the lock.
func (f *folderState) startIndexLog() error {
	p := filepath.Join(f.dir, indexLogName)
	hdr := f.indexLogHeader()
	if err := writeFileAtomic(p, hdr, true); err != nil {
		return err
	}
	f.logOff = int64(len(hdr))
	f.logBoot, f.ceiling = "", 0
	return nil
}

// frameRecord frames a record of mailagent.index.log or mailagent.cache:
// its length, the payload, and the payload's CRC-32, so that a record
// cut short by a crash is recognised.
func frameRecord(payload []byte) []byte {
	rec := binary.AppendUvarint(make([]byte, 0, len(payload)+14), uint64(len(payload)))
	rec = append(rec, payload...)
	return binary.LittleEndian.AppendUint32(rec, crc32.ChecksumIEEE(payload))
}

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
// changes since the index was last written whole, so that a STORE costs
// one appended record and one fsync rather than a rewrite of an index of
// every message. Its first line names the index generation it extends;
// a log of another generation is stale (its records are in the index)
// and ignored. It is appended to, like the index is written, only under
// the dovecot-uidlist lock; a record cut short by a crash fails its
// checksum and ends the log.
//
//	"MAILAGENT-INDEXLOG 1 " gen "\n"
//	records: len payload crc32(payload)
//	payload 'F': modseq n (uid info)...
const indexLogName = "mailagent.index.log"

const indexLogMagic = "MAILAGENT-INDEXLOG 1 "

// maxIndexLog is the log size above which a change rewrites the index
// whole instead (which starts an empty log).
func (f *folderState) maxIndexLog() int64 { return 64<<10 + int64(len(f.list))*16 }

func (f *folderState) indexLogHeader() []byte {
	return []byte(indexLogMagic + f.logGen + "\n")
}

// replayIndexLog applies the log's records beyond what this state has
// read. It returns the UIDs whose flags it changed.
func (f *folderState) replayIndexLog() []uint32 {
	if f.logGen == "" {
		return nil
	}
	fh, err := os.Open(filepath.Join(f.dir, indexLogName))
	if err != nil {
		return nil
	}
	defer fh.Close()
	hdr := f.indexLogHeader()
	got := make([]byte, len(hdr))
	if _, err := io.ReadFull(fh, got); err != nil || !bytes.Equal(got, hdr) {
		return nil
	}
	st, err := fh.Stat()
	if err != nil || st.Size() > maxIndexSize {
		return nil
	}
	off := max(f.logOff, int64(len(hdr)))
	if st.Size() <= off {
		return nil
	}
	data := make([]byte, st.Size()-off)
	n, _ := fh.ReadAt(data, off)
	data = data[:n]
	var changed []uint32
	for len(data) > 0 {
		l, k := binary.Uvarint(data)
		if k <= 0 || l > uint64(len(data)-k) || uint64(len(data)-k)-l < 4 {
			break
		}
		payload := data[k : k+int(l)]
		if crc32.ChecksumIEEE(payload) != binary.LittleEndian.Uint32(data[k+int(l):]) {
			break
		}
		changed = append(changed, f.applyLogRecord(payload)...)
		rec := k + int(l) + 4
		data = data[rec:]
		off += int64(rec)
	}
	f.logOff = off
	return changed
}

func (f *folderState) applyLogRecord(p []byte) []uint32 {
	if len(p) == 0 || p[0] != 'F' {
		return nil // a kind this version does not know
	}
	r := &indexReader{b: p[1:]}
	mod := r.uvarint()
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		return nil
	}
	f.highestModSeq = max(f.highestModSeq, mod)
	var changed []uint32
	for range n {
		uid, info := r.uvarint(), r.str()
		if r.err != nil {
			break
		}
		e := f.ents[uint32(uid)]
		if e == nil || uid > 1<<32-1 || e.modseq >= mod {
			continue
		}
		if e.info != info || e.inNew {
			e.info, e.inNew, e.hasInfo = info, false, true
			changed = append(changed, e.uid)
		}
		f.setModSeq(e, mod)
	}
	return changed
}

// appendIndexLog records flag changes at modseq mod, durably. It falls
// back to writing the index whole when there is no log of the current
// generation yet or the log is long. The caller holds the lock and has
// merged (lockIndex).
func (f *folderState) appendIndexLog(mod uint64, uids []uint32) error {
	p := filepath.Join(f.dir, indexLogName)
	if f.logGen == "" || f.logOff == 0 || f.logOff > f.maxIndexLog() {
		return f.saveIndexHeld()
	}
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return f.saveIndexHeld()
	}
	if err != nil {
		return err
	}
	defer fh.Close()
	if st, err := fh.Stat(); err != nil || st.Size() != f.logOff {
		// Not the log this state read up to (replaced, or cut).
		return f.saveIndexHeld()
	}
	payload := []byte{'F'}
	payload = binary.AppendUvarint(payload, mod)
	payload = binary.AppendUvarint(payload, uint64(len(uids)))
	for _, u := range uids {
		payload = binary.AppendUvarint(payload, uint64(u))
		payload = appendStr(payload, f.ents[u].info)
	}
	rec := frameRecord(payload)
	if _, err := fh.Write(rec); err != nil {
		return err
	}
	if err := fh.Sync(); err != nil {
		return err
	}
	f.logOff += int64(len(rec))
	return nil
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

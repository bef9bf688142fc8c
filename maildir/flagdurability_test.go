package maildir

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// logRecords returns the kinds of the records of the folder's
// mailagent.index.log, in order, and the offset just past each.
func logRecords(t *testing.T, f *Folder) (kinds []byte, ends []int64) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.st.dir, indexLogName))
	if err != nil {
		t.Fatal(err)
	}
	off := len(indexLogMagic) + 33
	for off < len(data) {
		l, k := binary.Uvarint(data[off:])
		if k <= 0 || off+k+int(l)+4 > len(data) {
			t.Fatalf("log cut at %d", off)
		}
		kinds = append(kinds, data[off+k])
		off += k + int(l) + 4
		ends = append(ends, int64(off))
	}
	return kinds, ends
}

// Flag changes within one boot are logged under one fsynced boot mark;
// a restart on the same boot (kill -9: the page cache survives) keeps
// every modseq as it was.
func TestFlagChangesShareOneBootMark(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	s := newStoreAt(t, base)
	s.bootID = "boot-1"
	m := openUser(t, s)
	for i := range 3 {
		deliver(t, s, m, "INBOX", msg(fmt.Sprint(i), 100))
	}
	in := folder(t, m, "INBOX")
	snapshot(t, in)
	in.st.mu.Lock()
	in.st.saveIndex(ctx) // a fresh log
	in.st.mu.Unlock()
	for i := range 10 {
		op := FlagsAdd // each message toggled: every STORE is a change
		if i/3%2 == 1 {
			op = FlagsRemove
		}
		if _, err := in.StoreFlags(ctx, []uint32{uint32(i%3 + 1)}, op, []string{FlagFlagged}); err != nil {
			t.Fatal(err)
		}
	}
	kinds, _ := logRecords(t, in)
	if string(kinds) != "BFFFFFFFFFF" {
		t.Fatalf("log records %q, want one boot mark then 10 flag records", kinds)
	}
	before := snapshot(t, in)
	s2 := newStoreAt(t, base)
	s2.bootID = "boot-1"
	after := snapshot(t, folder(t, openUser(t, s2), "INBOX"))
	if after.HighestModSeq != before.HighestModSeq {
		t.Fatalf("same boot: highest %d after restart, %d before", after.HighestModSeq, before.HighestModSeq)
	}
}

// After a reboot that lost the flag records written without an fsync,
// no modseq a client was told is handed out again: the highest modseq
// rises above the boot mark's ceiling, in every process, and a change
// whose rename survived gets a modseq above everything reported.
func TestModSeqAfterRebootLostRecords(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	s := newStoreAt(t, base)
	s.bootID = "boot-1"
	m := openUser(t, s)
	for i := range 3 {
		deliver(t, s, m, "INBOX", msg(fmt.Sprint(i), 100))
	}
	in := folder(t, m, "INBOX")
	snapshot(t, in)
	in.st.mu.Lock()
	in.st.saveIndex(ctx)
	in.st.mu.Unlock()
	if _, err := in.StoreFlags(ctx, []uint32{1}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.StoreFlags(ctx, []uint32{2}, FlagsAdd, []string{FlagFlagged}); err != nil {
		t.Fatal(err)
	}
	told := snapshot(t, in).HighestModSeq
	// The power fails: the records after the boot mark (fsynced) are
	// lost; the renames were written, as a journal may have them.
	kinds, ends := logRecords(t, in)
	if string(kinds) != "BFF" {
		t.Fatalf("log records %q", kinds)
	}
	if err := os.Truncate(filepath.Join(in.st.dir, indexLogName), ends[1]); err != nil {
		t.Fatal(err)
	}
	// Two processes of the new boot load the folder.
	sa, sb := newStoreAt(t, base), newStoreAt(t, base)
	sa.bootID, sb.bootID = "boot-2", "boot-2"
	a := folder(t, openUser(t, sa), "INBOX")
	snapA := snapshot(t, a)
	if snapA.HighestModSeq <= told {
		t.Fatalf("after the reboot highest %d, a client was told %d", snapA.HighestModSeq, told)
	}
	for _, msg := range snapA.Messages {
		if msg.UID == 2 && (!msg.HasFlag(FlagFlagged) || msg.ModSeq <= told) {
			t.Fatalf("the surviving rename: %+v (told %d)", msg, told)
		}
	}
	b := folder(t, openUser(t, sb), "INBOX")
	snapB := snapshot(t, b)
	if snapB.HighestModSeq != snapA.HighestModSeq {
		t.Fatalf("second process: highest %d, first %d", snapB.HighestModSeq, snapA.HighestModSeq)
	}
	out, err := b.StoreFlags(ctx, []uint32{3}, FlagsAdd, []string{FlagAnswered})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].ModSeq <= snapA.HighestModSeq {
		t.Fatalf("a new change got modseq %d, highest reported %d", out[0].ModSeq, snapA.HighestModSeq)
	}
	// After the surviving records: the raise under the new boot's mark,
	// the scan's record of the rename it found, the new change.
	if kinds, _ := logRecords(t, b); string(kinds) != "BFBFFF" {
		t.Fatalf("log records %q", kinds)
	}
}

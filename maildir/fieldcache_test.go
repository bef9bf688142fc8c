package maildir

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fieldsOf calls CachedFields for uids with a compute that returns the
// message's first line and counts its calls.
func fieldsOf(t *testing.T, f *Folder, uids []uint32) (out [][]byte, computed int) {
	t.Helper()
	return fieldsVersion(t, f, uids, 1)
}

func fieldsVersion(t *testing.T, f *Folder, uids []uint32, version byte) (out [][]byte, computed int) {
	t.Helper()
	out, err := f.CachedFields(context.Background(), uids, version, func(r io.Reader) ([]byte, error) {
		computed++
		b, err := io.ReadAll(r)
		if i := slices.Index(b, '\r'); i >= 0 {
			b = b[:i]
		}
		return b, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, computed
}

func TestCachedFields(t *testing.T) {
	for _, n := range []int{5, maxFieldsLogged + 10} { // one log record; the index written whole
		base := t.TempDir()
		dir := bigFolder(t, base, n)
		uids := make([]uint32, n+1)
		for i := range n {
			uids[i] = uint32(i + 1)
		}
		uids[n] = 1 << 30 // not in the folder
		f := openFolder(t, base, dir, &Options{SpecialFolders: []SpecialFolder{}})
		out, computed := fieldsOf(t, f, uids)
		if computed != n || out[n] != nil || string(out[0]) != "Subject: x" {
			t.Fatalf("%d messages: computed %d, got %q … %q", n, computed, out[0], out[n])
		}
		// Read back: by this Store, after a flag change (a rename keeps
		// the record), and by a second Store (another process, or a
		// restart after kill -9: the first is not closed).
		if _, err := f.StoreFlags(context.Background(), []uint32{2}, FlagsAdd, []string{FlagFlagged}); err != nil {
			t.Fatal(err)
		}
		again, computed := fieldsOf(t, f, uids)
		if computed != 0 || !slices.EqualFunc(again, out, slices.Equal) {
			t.Fatalf("%d messages, second call: computed %d", n, computed)
		}
		g := openFolder(t, base, dir, &Options{SpecialFolders: []SpecialFolder{}})
		other, computed := fieldsOf(t, g, uids[:3])
		if computed != 0 || string(other[2]) != "Subject: x" {
			t.Fatalf("%d messages, second Store: computed %d, %q", n, computed, other[2])
		}
	}
}

// A damaged cache file costs a recomputation, never wrong data.
func TestCachedFieldsDamaged(t *testing.T) {
	base := t.TempDir()
	dir := bigFolder(t, base, 4)
	f := openFolder(t, base, dir, &Options{SpecialFolders: []SpecialFolder{}})
	uids := []uint32{1, 2, 3, 4}
	fieldsOf(t, f, uids)
	p := filepath.Join(dir, cacheName)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f.st.mu.Lock()
	off := f.st.ents[3].fieldsOff
	f.st.mu.Unlock()
	data[off+10] ^= 0xff // inside message 3's record
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, computed := fieldsOf(t, f, uids)
	if computed != 1 || string(out[2]) != "Subject: x" {
		t.Fatalf("after damage: computed %d, %q", computed, out[2])
	}
	if err := os.WriteFile(p, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, computed := fieldsOf(t, f, uids); computed != 4 {
		t.Fatalf("after the file was replaced: computed %d", computed)
	}
	if _, computed := fieldsOf(t, f, uids); computed != 0 {
		t.Fatalf("after the file was started afresh: computed %d", computed)
	}
	// A new version of the caller's data replaces the records.
	if _, computed := fieldsVersion(t, f, uids, 2); computed != 4 {
		t.Fatalf("version 2: computed %d", computed)
	}
	if _, computed := fieldsVersion(t, f, uids, 2); computed != 0 {
		t.Fatalf("version 2 again: computed %d", computed)
	}
}

// FuzzCachedFieldsRead reads header-fields records at arbitrary offsets
// of an arbitrary cache file: no panic, and data only for a record that
// names the message asked for.
func FuzzCachedFieldsRead(f *testing.F) {
	rec := cacheRec{uid: 7, key: "k", size: 3, mtime: 9}
	seed := func(data string) []byte {
		payload := binaryRecordPayload(rec, data)
		return append([]byte(cacheMagic+"0123456789abcdef0123456789abcdef\n"), frameRecord(payload)...)
	}
	f.Add(seed("fields"), uint16(51), uint16(51))
	f.Add(append(seed("a"), seed("b")[51:]...), uint16(51), uint16(70))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, file []byte, off1, off2 uint16) {
		p := filepath.Join(dir, cacheName)
		if err := os.WriteFile(p, file, 0o600); err != nil {
			t.Fatal(err)
		}
		recs := []fieldsAt{{i: 0, rec: rec, off: uint64(off1)}, {i: 1, rec: rec, off: uint64(off2)}}
		out := make([][]byte, 2)
		readFieldsRecords(p, "0123456789abcdef0123456789abcdef", 1, recs, out)
		for i, o := range out {
			if o == nil {
				continue
			}
			off := []uint16{off1, off2}[i]
			if int(off) >= len(file) || !bytes.Contains(file[off:], o) {
				t.Fatalf("record %d: %q not in the file at %d", i, o, off)
			}
		}
	})
}

// binaryRecordPayload is the payload of rec's header-fields record
// holding data, as storeFields writes it.
func binaryRecordPayload(rec cacheRec, data string) []byte {
	p := append(rec.payload(), fieldsMark, 1)
	return append(p, data...)
}

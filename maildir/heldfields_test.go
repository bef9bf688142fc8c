package maildir

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// decodedOf calls DecodedFields for uids with a compute that returns the
// message's first line and a decode that returns it as a string; it
// counts the calls of both.
func decodedOf(t *testing.T, f *Folder, uids []uint32) (out []string, computed, decoded int) {
	t.Helper()
	vals, err := f.DecodedFields(context.Background(), uids, 1, func(r io.Reader) ([]byte, error) {
		computed++
		b, err := io.ReadAll(r)
		if i := slices.Index(b, '\r'); i >= 0 {
			b = b[:i]
		}
		return b, err
	}, func(data []byte) (any, int, error) {
		decoded++
		return string(data), len(data), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out, computed, decoded
}

// TestDecodedFields: decoded values are kept with the folder's state and
// shared; they follow changes another process makes to the Maildir
// (an expunge, a new file, a file moved away and back under a new name),
// stay within Options.HeldFieldsMemory and go when the Maildir is
// closed.
func TestDecodedFields(t *testing.T) {
	base := t.TempDir()
	dir := bigFolder(t, base, 4)
	s, err := New(base, &Options{SpecialFolders: []SpecialFolder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	f := folder(t, m, "INBOX")
	uids := []uint32{1, 2, 3, 4}
	out, computed, decoded := decodedOf(t, f, uids)
	if computed != 4 || decoded != 4 || out[3] != "Subject: x" {
		t.Fatalf("first call: computed %d, decoded %d, %q", computed, decoded, out)
	}
	const each = int64(len("Subject: x")) + heldOverhead
	if got := s.held.Load(); got != 4*each {
		t.Fatalf("held %d bytes, want %d", got, 4*each)
	}
	// UIDs out of order (looked up one by one) get the same values.
	if some, computed, decoded := decodedOf(t, f, []uint32{4, 1 << 30, 1}); computed != 0 || decoded != 0 || some[0] != out[3] || some[1] != "" || some[2] != out[0] {
		t.Fatalf("UIDs out of order: computed %d, decoded %d, %q", computed, decoded, some)
	}
	// A second handle on the same Maildir (another session) shares them.
	m2, err := s.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	again, computed, decoded := decodedOf(t, folder(t, m2, "INBOX"), uids)
	if computed != 0 || decoded != 0 || !slices.Equal(again, out) {
		t.Fatalf("second handle: computed %d, decoded %d, %q", computed, decoded, again)
	}

	// Another process expunges message 2, delivers a message and
	// renames message 3's file to a new base name (a message moved out
	// and in again).
	snap := snapshot(t, f)
	path := func(i int) string {
		names, err := filepath.Glob(filepath.Join(dir, "cur", snap.Messages[i].Key+"*"))
		if err != nil || len(names) != 1 {
			t.Fatalf("message %d: %q %v", i, names, err)
		}
		return names[0]
	}
	if err := os.Remove(path(1)); err != nil {
		t.Fatal(err)
	}
	newKey := withSizes(newNamer(2, "other").next(time.Now()), 20, 20)
	if err := os.WriteFile(filepath.Join(dir, "new", newKey), []byte("Subject: y\r\n\r\nbody\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	moved := path(2)
	if err := os.WriteFile(moved, []byte("Subject: z\r\n\r\nbody\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	movedKey := withSizes(newNamer(3, "other").next(time.Now()), 20, 20)
	if err := os.Rename(moved, filepath.Join(dir, "cur", movedKey+infoSep)); err != nil {
		t.Fatal(err)
	}
	uids = []uint32{1, 2, 3, 4, 5, 6}
	out, computed, decoded = decodedOf(t, f, uids)
	want := []string{"Subject: x", "", "", "Subject: x", "Subject: y", "Subject: z"}
	if snap := snapshot(t, f); len(snap.Messages) != 4 || snap.Messages[3].UID != 6 {
		t.Fatalf("after the changes: %d messages", len(snap.Messages))
	}
	slices.Sort(out[4:]) // the two new files' UIDs in either order
	if !slices.Equal(out, want) || computed != 2 || decoded != 2 {
		t.Fatalf("after the changes: %q (want %q), computed %d, decoded %d", out, want, computed, decoded)
	}
	if got := s.held.Load(); got != 4*each {
		t.Fatalf("held %d bytes after the changes, want %d", got, 4*each)
	}
	m2.Close()
	m.Close()
	if got := s.held.Load(); got != 0 {
		t.Fatalf("held %d bytes after the Maildir was closed", got)
	}

	// The bound: two values kept, the others decoded on every call.
	s2, err := New(base, &Options{SpecialFolders: []SpecialFolder{}, HeldFieldsMemory: 2 * each})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	m3, err := s2.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close()
	g := folder(t, m3, "INBOX")
	decodedOf(t, g, uids)
	if out, computed, decoded := decodedOf(t, g, uids); computed != 0 || decoded != 2 || !slices.Equal(out[:4], want[:4]) {
		t.Fatalf("bounded: %q, computed %d, decoded %d", out, computed, decoded)
	}
	if got := s2.held.Load(); got != 2*each {
		t.Fatalf("bounded: held %d bytes", got)
	}
}

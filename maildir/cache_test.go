package maildir

import (
	"context"
	"os"
	"testing"
	"time"
)

// The cache is computed once per message, kept over a restart, used by a
// second Store on the same tree, and computed again once the file
// changes.
func TestCachedSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	s := newStoreAt(t, base)
	m := openUser(t, s)
	deliver(t, s, m, "INBOX", msg("a", 300))
	in := folder(t, m, "INBOX")
	snapshot(t, in)
	computed := 0
	get := func(f *Folder) string {
		t.Helper()
		fh, _, err := f.Open(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		data, err := f.Cached(ctx, 1, fh, func() ([]byte, error) {
			computed++
			return []byte("structure v" + string(rune('0'+computed))), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if got := get(in); got != "structure v1" || computed != 1 {
		t.Fatalf("first: %q after %d computations", got, computed)
	}
	if got := get(in); got != "structure v1" || computed != 1 {
		t.Fatalf("second: %q after %d computations", got, computed)
	}
	m.Close()
	s.Close()

	s2 := newStoreAt(t, base)
	m2 := openUser(t, s2)
	in2 := folder(t, m2, "INBOX")
	if got := get(in2); got != "structure v1" || computed != 1 {
		t.Fatalf("after restart: %q after %d computations", got, computed)
	}
	// A file changed in place (its mtime moved) is computed again.
	fh, _, err := in2.Open(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(fh.Name(), later, later); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if got := get(in2); got != "structure v2" || computed != 2 {
		t.Fatalf("after a change: %q after %d computations", got, computed)
	}
}

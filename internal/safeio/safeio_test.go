package safeio

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// entries lists dir's names, to show no temporary file is left behind.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileReplaces(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	for _, content := range []string{"one\n", "two\n"} {
		if err := WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q, want only state", names)
	}
}

func TestWriteFileNoReplace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "key.pem")
	if err := WriteFile(p, []byte("first"), 0o600, NoReplace()); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(p, []byte("second"), 0o600, NoReplace())
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "first" {
		t.Errorf("content %q, want the first write's", got)
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q, want only key.pem", names)
	}
}

func TestWriteFileFailureLeavesOld(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	if err := WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteFile(p, []byte("new"), 0o600, Prepare(func(*os.File) error { return boom }))
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want Prepare's", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Errorf("content %q, want old", got)
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q, want only state", names)
	}
}

func TestWriteFileTempDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	tmp := filepath.Join(root, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "meta")
	if err := WriteFile(p, []byte("x"), 0o600, TempDir(tmp)); err != nil {
		t.Fatal(err)
	}
	if names := entries(t, tmp); len(names) != 0 {
		t.Errorf("tmp holds %q after the write", names)
	}
	// The temporary directory missing is an error, not a write elsewhere.
	if err := WriteFile(p, []byte("y"), 0o600, TempDir(filepath.Join(root, "gone"))); err == nil {
		t.Error("write through a missing temporary directory succeeded")
	}
}

func TestSyncDirReportsErrors(t *testing.T) {
	t.Parallel()
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncDir of a missing directory: %v, want fs.ErrNotExist", err)
	}
	if err := SyncDir(t.TempDir()); err != nil {
		t.Errorf("SyncDir: %v", err)
	}
}

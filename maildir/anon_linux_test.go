package maildir

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestAnonUnsupportedErrors(t *testing.T) {
	for _, errno := range []error{unix.EOPNOTSUPP, unix.EISDIR, unix.EINVAL} {
		if !anonUnsupported(&os.PathError{Op: "open", Path: "x", Err: errno}) {
			t.Errorf("%v not taken as unsupported", errno)
		}
	}
	for _, errno := range []error{unix.EACCES, unix.ENOSPC, unix.EMFILE, unix.ENOENT} {
		if anonUnsupported(&os.PathError{Op: "open", Path: "x", Err: errno}) {
			t.Errorf("%v, a real failure, taken as unsupported", errno)
		}
	}
	// The real thing on this file system.
	dir := t.TempDir()
	f, err := openAnon(dir)
	if err != nil {
		t.Skipf("O_TMPFILE here: %v", err)
	}
	defer f.Close()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("an unnamed file is listed: %v", ents)
	}
	f.WriteString("data")
	if err := linkAnon(f, dir+"/named"); err != nil {
		t.Fatal(err)
	}
	if err := linkAnon(f, dir+"/named"); err == nil {
		t.Fatal("linked over an existing name")
	}
	if data, err := os.ReadFile(dir + "/named"); err != nil || string(data) != "data" {
		t.Fatalf("%q %v", data, err)
	}
}

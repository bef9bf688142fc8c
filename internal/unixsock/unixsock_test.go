package unixsock

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestListen: the socket appears at its path with the mode and owner
// asked for, takes connections, replaces a stale socket, refuses to
// replace another kind of file, and is removed by Close.
func TestListen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lmtp")
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	opts := Options{Mode: 0o660}
	if os.Geteuid() == 0 {
		opts.Owner, opts.Group = "65534", "65534"
	}
	ln, err := Listen(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want a socket with 0660", fi.Mode())
	}
	if st := fi.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && (st.Uid != 65534 || st.Gid != 65534) {
		t.Errorf("socket owned by %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
	if ln.Addr().String() != path {
		t.Errorf("Addr %q, want %q", ln.Addr(), path)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	if _, err := c.Read(b); err != nil || string(b) != "hi" {
		t.Fatalf("read %q, %v", b, err)
	}
	c.Close()
	ln.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket still there after Close: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Errorf("left behind %v", ents)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, Options{}); err == nil {
		t.Fatal("replaced a regular file")
	}
	if _, err := Listen(filepath.Join(dir, "x"), Options{Owner: "no-such-user-here"}); err == nil {
		t.Fatal("unknown owner accepted")
	}
}

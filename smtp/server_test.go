package smtp

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestNewServerValidates(t *testing.T) {
	st := newTestStack(t)
	for name, o := range map[string]Options{
		"no target":                   {Role: MX},
		"submission without TLS":      {Role: Submission, Target: st.router, Authenticator: st.auth, Directory: st.db},
		"submission without auth":     {Role: Submission, Target: st.router, TLSConfig: st.tls, Directory: st.db},
		"implicit TLS without config": {Role: MX, Target: st.router, ImplicitTLS: true},
	} {
		if _, err := NewServer(o); err == nil {
			t.Errorf("%s: NewServer accepted the options", name)
		}
	}
}

// TestListenAndServeUnix replaces a socket left behind by an earlier run
// (but nothing else), and returns ErrServerClosed after Close.
func TestListenAndServeUnix(t *testing.T) {
	st := newTestStack(t)
	sock := filepath.Join(st.dir, "lmtp.sock")
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	o := st.options(LMTP)
	o.Network, o.Addr = "unix", sock
	srv, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe() }()
	waitFor(t, func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	dial(t, "unix", sock).run("S: 220\nC: LHLO x\nS: 250")
	srv.Close()
	if err := <-done; err != ErrServerClosed {
		t.Fatalf("ListenAndServe returned %v", err)
	}
	if err := srv.Serve(nil); err != ErrServerClosed {
		t.Fatalf("Serve after Close returned %v", err)
	}

	plain := filepath.Join(st.dir, "not-a-socket")
	if err := os.WriteFile(plain, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.Addr = plain
	srv, err = NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.ListenAndServe(); err == nil {
		t.Fatal("listened over a regular file")
	}
	if b, err := os.ReadFile(plain); err != nil || string(b) != "keep" {
		t.Fatalf("regular file touched: %q %v", b, err)
	}
}

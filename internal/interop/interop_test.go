package interop

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// recorder notes how a test ended.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(f string, a ...any) {
	r.skipped = true
	r.msg = f
}
func (r *recorder) Fatalf(f string, a ...any) {
	r.failed = true
	r.msg = f
}

func TestMissingProgramSkipsOrFails(t *testing.T) {
	t.Setenv("MAILAGENT_INTEROP", "")
	r := &recorder{}
	if p := Program(r, "no-such-program-mailagent"); p != "" || !r.skipped || r.failed {
		t.Fatalf("without MAILAGENT_INTEROP: path %q, skipped %v, failed %v", p, r.skipped, r.failed)
	}
	t.Setenv("MAILAGENT_INTEROP", "1")
	r = &recorder{}
	Program(r, "no-such-program-mailagent")
	if !r.failed || r.skipped {
		t.Fatalf("with MAILAGENT_INTEROP=1: skipped %v, failed %v", r.skipped, r.failed)
	}
}

func TestProgramFound(t *testing.T) {
	r := &recorder{}
	if p := Program(r, "sh"); p == "" || r.skipped || r.failed {
		t.Fatalf("sh: %q, skipped %v, failed %v", p, r.skipped, r.failed)
	}
}

func TestMySQLDSN(t *testing.T) {
	t.Setenv("MAILAGENT_INTEROP", "1")
	t.Setenv("MAILAGENT_MYSQL_DSN", "")
	r := &recorder{}
	MySQLDSN(r)
	if !r.failed {
		t.Fatal("unset DSN under MAILAGENT_INTEROP=1 did not fail")
	}
	t.Setenv("MAILAGENT_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test")
	if got := MySQLDSN(&recorder{}); got != "root@tcp(127.0.0.1:3306)/test" {
		t.Fatalf("DSN = %q", got)
	}
}

// TestWaitListening returns once a TCP address and a Unix socket accept
// connections, and fails at once, without waiting for its deadline, for
// an address nothing listens on when the server's process has exited.
func TestWaitListening(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	sock := filepath.Join(t.TempDir(), "s")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	r := &recorder{}
	WaitListening(r, "server", nil, tl.Addr().String(), sock)
	if r.failed {
		t.Fatalf("listening addresses: %s", r.msg)
	}

	addr := tl.Addr().String()
	tl.Close()
	exited := make(chan error, 1)
	exited <- errors.New("exit status 89")
	r = &recorder{}
	WaitListening(r, "server", exited, addr)
	if !r.failed || !strings.Contains(r.msg, "exited before listening") {
		t.Fatalf("exited server: failed %v, %q", r.failed, r.msg)
	}
}

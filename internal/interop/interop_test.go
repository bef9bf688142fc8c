package interop

import (
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

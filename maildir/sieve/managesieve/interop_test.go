package managesieve

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInteropSieveConnect drives the server with sieve-connect (Debian's
// sieve-connect package): STARTTLS with certificate verification, SASL
// PLAIN, upload, activate, list, download and delete.
func TestInteropSieveConnect(t *testing.T) {
	bin, err := exec.LookPath("sieve-connect")
	if err != nil {
		if os.Getenv("MAILAGENT_INTEROP") == "1" {
			t.Fatal("sieve-connect not installed")
		}
		t.Skip("sieve-connect not installed")
	}
	e := newEnv(t, nil)
	host, port, _ := net.SplitHostPort(e.addr)
	local := filepath.Join(t.TempDir(), "vacation.sieve")
	script := "require \"vacation\";\r\nvacation :days 3 \"Back on Monday.\";\r\n"
	if err := os.WriteFile(local, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		pw.WriteString("secret\n")
		pw.Close()
		defer pr.Close()
		argv := append([]string{"--server", host, "--port", port, "--user", "bob@example.org",
			"--authmech", "PLAIN", "--passwordfd", "3", "--tlscafile", e.cert, "--tlshostname", "localhost"}, args...)
		cmd := exec.Command(bin, argv...)
		cmd.ExtraFiles = []*os.File{pr}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("sieve-connect %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	run("--upload", "--localsieve", local, "--remotesieve", "vacation")
	if got, err := os.ReadFile(filepath.Join(e.home(), "sieve", "vacation.sieve")); err != nil || string(got) != script {
		t.Fatalf("uploaded script %q, %v", got, err)
	}
	run("--activate", "--remotesieve", "vacation")
	if target, err := os.Readlink(filepath.Join(e.home(), ".dovecot.sieve")); err != nil || target != "sieve/vacation.sieve" {
		t.Fatalf(".dovecot.sieve -> %q, %v", target, err)
	}
	if out := run("--list"); !strings.Contains(out, "vacation") || !strings.Contains(strings.ToLower(out), "active") {
		t.Fatalf("list: %s", out)
	}
	down := filepath.Join(t.TempDir(), "down.sieve")
	run("--download", "--remotesieve", "vacation", "--localsieve", down)
	if got, _ := os.ReadFile(down); string(got) != script {
		t.Fatalf("downloaded %q", got)
	}
	run("--deactivate")
	run("--delete", "--remotesieve", "vacation")
	if _, err := os.Stat(filepath.Join(e.home(), "sieve", "vacation.sieve")); !os.IsNotExist(err) {
		t.Fatalf("script not deleted: %v", err)
	}
}

package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

const (
	crashEnv     = "MAILAGENT_SMTP_CRASH_DIR"
	crashUserEnv = "MAILAGENT_SMTP_CRASH_USER"
)

// TestCrashChild is the MX server the crash test runs as a child
// process and kills; it does nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("runs only as the crash test's child process")
	}
	ctx := context.Background()
	db, err := store.Open(ctx, store.DriverSQLite, filepath.Join(dir, "directory.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Run by hand as a benchmark target (docs/BENCHMARKS.md), the child
	// creates the recipient it is told to.
	if user := os.Getenv(crashUserEnv); user != "" {
		a, err := store.ParseAddress(user)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.AddDomain(ctx, a.Domain); err != nil && !errors.Is(err, store.ErrExists) {
			t.Fatal(err)
		}
		if err := db.AddUser(ctx, &store.User{Address: user, PasswordHash: "x"}); err != nil && !errors.Is(err, store.ErrExists) {
			t.Fatal(err)
		}
	}
	md, err := maildir.New(filepath.Join(dir, "mail"), &maildir.Options{Hostname: "crash"})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := router.New(router.Options{Directory: db, Local: &local.Delivery{Maildirs: md, Directory: db}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Options{Role: MX, Hostname: "mx.test", Target: rt, SpoolDir: dir, MaxConnsPerIP: 64})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", l.Addr())
	t.Fatal(srv.Serve(l))
}

// TestCrash kills the MX with SIGKILL at random moments under load from
// the load tool (examples/smtpload), 20 times, and checks that every
// message answered 250 is in the Maildir exactly as sent, and that no
// file there is partial.
func TestCrash(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("child process")
	}
	dir := t.TempDir()
	box := crashDirectory(t, dir, "alice@local.example")[0]
	load := buildLoadTool(t)

	acked := map[string]string{} // Message-ID answered 250 → SHA-256 of its body
	for round := range 20 {
		cmd, addr := startCrashChild(t, dir, round)
		// Kill after a random number of acknowledgements, while four
		// connections are at random points of their transactions. The
		// tool writes a record line as soon as it reads each 250, to a
		// pipe on its fd 3; once the server is gone its remaining
		// messages fail fast, and it exits.
		killAt := 1 + rand.IntN(12)
		rec, recW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		var res bytes.Buffer
		tool := exec.Command(load, "-addr", addr, "-c", "4", "-n", "60", "-msgs-per-conn", "5",
			"-size", "7000", "-from", "load@far.example", "-to", "alice@local.example",
			"-ehlo", "load.far.example", "-timeout", "20s", "-json", "-record", "/dev/fd/3")
		tool.ExtraFiles = []*os.File{recW}
		tool.Stdout = &res
		tool.Stderr = os.Stderr
		if err := tool.Start(); err != nil {
			t.Fatal(err)
		}
		recW.Close()
		n := 0
		sc := bufio.NewScanner(rec)
		for sc.Scan() {
			id, hash, ok := strings.Cut(sc.Text(), " ")
			if !ok {
				t.Fatalf("round %d: record line %q", round, sc.Text())
			}
			acked[id] = hash
			if n++; n == killAt {
				cmd.Process.Kill()
			}
		}
		rec.Close()
		cmd.Process.Kill()
		cmd.Wait()
		var ee *exec.ExitError
		if err := tool.Wait(); err != nil && !errors.As(err, &ee) {
			t.Fatalf("round %d: load tool: %v", round, err)
		}
		var r struct{ Sent int }
		if err := json.Unmarshal(res.Bytes(), &r); err != nil || r.Sent != n {
			t.Fatalf("round %d: load tool reported %q (%v), %d record lines", round, res.String(), err, n)
		}
	}

	found := crashStored(t, box, acked)
	for id := range acked {
		if !found[id] {
			t.Errorf("%s was acknowledged with 250 but is not in the Maildir", id)
		}
	}
	t.Logf("%d messages acknowledged, %d stored, over 20 kills", len(acked), len(found))
	if len(acked) < 20 {
		t.Fatalf("only %d acknowledgements: the load did not run", len(acked))
	}
}

// crashDirectory makes the directory the crash child serves, in dir,
// with users in local.example, and returns their Maildirs.
func crashDirectory(t *testing.T, dir string, users ...string) []string {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.DriverSQLite, filepath.Join(dir, "directory.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.AddDomain(ctx, "local.example"); err != nil {
		t.Fatal(err)
	}
	var boxes []string
	for _, a := range users {
		if err := db.AddUser(ctx, &store.User{Address: a, PasswordHash: "x"}); err != nil {
			t.Fatal(err)
		}
		u, err := db.LookupUser(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		boxes = append(boxes, filepath.Join(dir, "mail", u.Maildir))
	}
	return boxes
}

// startCrashChild starts TestCrashChild on the state in dir and returns
// it with the address it serves.
func startCrashChild(t *testing.T, dir string, round int) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("round %d: child did not start: %q %v", round, line, err)
	}
	return cmd, addr
}

// crashStored checks every message file of the Maildir box: each carries
// the hash of its body (X-Smtpload-Body-SHA256), acknowledged or not, and
// must match it, and the acknowledged ones must also match acked, the
// record of what was sent (Message-ID → hash). It returns the
// Message-IDs found.
func crashStored(t *testing.T, box string, acked map[string]string) map[string]bool {
	t.Helper()
	found := map[string]bool{}
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(box, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(box, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			id, want := crashField(b, "Message-ID"), crashField(b, "X-Smtpload-Body-SHA256")
			if id == "" || want == "" {
				t.Fatalf("%s: not a test message:\n%.300s", e.Name(), b)
			}
			_, body, _ := bytes.Cut(b, []byte("\r\n\r\n"))
			sum := sha256.Sum256(body)
			if got := hex.EncodeToString(sum[:]); got != want || acked[id] != "" && acked[id] != got {
				t.Fatalf("%s: %s stored damaged or partial", e.Name(), id)
			}
			found[id] = true
		}
	}
	return found
}

// buildLoadTool builds examples/smtpload into a temporary directory.
func buildLoadTool(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the crash test builds examples/smtpload: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "smtpload")
	build := exec.Command(goBin, "build", "-o", bin, "../examples/smtpload")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/smtpload: %v\n%s", err, out)
	}
	return bin
}

// crashField returns the unfolded value of the first header field name
// in message b.
func crashField(b []byte, name string) string {
	m, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		return ""
	}
	return m.Header.Get(name)
}

package maildir

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// crashBody is the deterministic content of delivery n of child c: the
// parent regenerates it to check that a file is complete.
func crashBody(c, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Subject: crash %d %d\r\n\r\n", c, n)
	r := rand.New(rand.NewPCG(uint64(c), uint64(n)))
	lines := 50 + r.IntN(400)
	for i := range lines {
		fmt.Fprintf(&b, "%d-%d line %d %x\r\n", c, n, i, r.Uint64())
	}
	return b.Bytes()
}

// TestCrashChild is the delivering child of TestCrashDelivery; it does
// nothing unless started by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("MAILDIR_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestCrashDelivery")
	}
	child, _ := strconv.Atoi(os.Getenv("MAILDIR_CRASH_CHILD"))
	s, err := New(filepath.Dir(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("MAILDIR_CRASH_RENAME") != "" {
		s.anon.Store(anonOff)
	}
	crashWorkers(func(w, i int, report func(format string, args ...any)) error {
		n := i*4 + w
		d, err := s.Deliver(context.Background(), dir, "INBOX", bytes.NewReader(crashBody(child, n)), nil)
		if err == nil {
			report("done %d %s", n, d.Key)
		}
		return err
	})
}

// crashWorkers runs step in four goroutines until the process is
// killed; each line report writes reaches the parent whole, after the
// step it tells of is done. A failed step ends the process.
func crashWorkers(step func(w, i int, report func(format string, args ...any)) error) {
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	report := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				if err := step(w, i, report); err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(3)
				}
			}
		})
	}
	wg.Wait()
}

// runCrashChild runs the test child of this binary with env, hands each
// line it prints to line, and kills it with SIGKILL after kill lines.
func runCrashChild(t *testing.T, child string, env []string, kill int, line func(fields []string)) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	seen := 0
	for sc.Scan() {
		line(strings.Fields(sc.Text()))
		if seen++; seen == kill {
			cmd.Process.Kill()
		}
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("%s ended with %v", child, err)
	}
}

// TestCrashDelivery kills a delivering child with SIGKILL at random
// points, repeatedly, and checks that every delivery it reported done is
// in new/ and complete, and that new/ and cur/ hold nothing else. The
// first half of the rounds deliver through unnamed files where the file
// system has them (after which tmp/ must be empty: the kernel frees an
// unnamed file whose writer died), the second half through tmp/.
func TestCrashDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop skipped in -short mode")
	}
	base := t.TempDir()
	dir := filepath.Join(base, "Maildir")
	done := map[string][]byte{} // key → expected content
	rounds := 10
	for round := range rounds {
		env := []string{"MAILDIR_CRASH_DIR=" + dir, "MAILDIR_CRASH_CHILD=" + strconv.Itoa(round)}
		if round >= rounds/2 {
			env = append(env, "MAILDIR_CRASH_RENAME=1")
		}
		runCrashChild(t, "TestCrashChild", env, 1+rand.IntN(40), func(f []string) {
			if len(f) == 3 && f[0] == "done" {
				n, _ := strconv.Atoi(f[1])
				done[f[2]] = crashBody(round, n)
			}
		})
		if round == rounds/2-1 && anonWorks(dir) {
			if left := filesIn(t, dir, "tmp"); len(left) != 0 {
				t.Fatalf("deliveries through unnamed files left %v in tmp/", left)
			}
		}
	}
	files := map[string]bool{}
	for _, sub := range []string{"new", "cur"} {
		for _, name := range filesIn(t, dir, sub) {
			base, _, _ := splitFilename(name)
			files[base] = true
			data, err := os.ReadFile(filepath.Join(dir, sub, name))
			if err != nil {
				t.Fatal(err)
			}
			size, vsize := parseSizes(base)
			if size != int64(len(data)) || vsize != size {
				t.Errorf("%s/%s: %d bytes, name says S=%d W=%d", sub, name, len(data), size, vsize)
			}
			if want, ok := done[base]; ok && !bytes.Equal(data, want) {
				t.Errorf("%s/%s: content differs from what was delivered", sub, name)
			}
			if !bytes.HasPrefix(data, []byte("Subject: crash ")) {
				t.Errorf("%s/%s: not a delivered message", sub, name)
			}
		}
	}
	for key := range done {
		if !files[key] {
			t.Errorf("delivery %s was reported done but is missing", key)
		}
	}
	if len(done) < rounds {
		t.Fatalf("only %d deliveries in %d rounds", len(done), rounds)
	}
	t.Logf("%d rounds, %d acknowledged deliveries, %d files", rounds, len(done), len(files))
}

// anonWorks reports whether unnamed files can be created in dir/new.
func anonWorks(dir string) bool {
	f, err := openAnon(filepath.Join(dir, "new"))
	if err != nil {
		return false
	}
	f.Close()
	return true
}

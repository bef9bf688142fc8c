package smtp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mailagent/mailagent/maildir"
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
	router, err := NewRouter(RouterOptions{Directory: db, Local: &LocalDelivery{Maildirs: md, Directory: db}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Options{Role: MX, Hostname: "mx.test", Target: router, SpoolDir: dir, MaxConnsPerIP: 64})
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

// TestCrash kills the MX with SIGKILL at random moments under load, 20
// times, and checks that every message answered 250 is in the Maildir
// exactly as sent, and that no file there is partial.
func TestCrash(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("child process")
	}
	dir := t.TempDir()
	ctx := context.Background()
	db, err := store.Open(ctx, store.DriverSQLite, filepath.Join(dir, "directory.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddDomain(ctx, "local.example"); err != nil {
		t.Fatal(err)
	}
	if err := db.AddUser(ctx, &store.User{Address: "alice@local.example", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	u, err := db.LookupUser(ctx, "alice@local.example")
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	var (
		mu    sync.Mutex
		acked = map[string]bool{} // Subjects answered 250
		seq   int
	)
	next := func() (string, string) {
		mu.Lock()
		defer mu.Unlock()
		seq++
		return regenerate(fmt.Sprintf("crash-%d", seq))
	}
	for round := range 20 {
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
		// Kill after a random number of acknowledgements, while four
		// clients are at random points of their transactions.
		killAt := 1 + rand.IntN(12)
		var n int
		var once sync.Once
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				crashLoad(addr, next, func(subj string) {
					mu.Lock()
					acked[subj] = true
					n++
					k := n
					mu.Unlock()
					if k >= killAt {
						once.Do(func() { cmd.Process.Kill() })
					}
				})
			}()
		}
		wg.Wait()
		once.Do(func() { cmd.Process.Kill() })
		cmd.Wait()
		n = 0
	}

	box := filepath.Join(dir, "mail", u.Maildir)
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
			s := string(b)
			i := strings.Index(s, "\r\nSubject: crash-")
			if i < 0 {
				t.Fatalf("%s: not a test message:\n%.300s", e.Name(), s)
			}
			subj := strings.TrimPrefix(s[i+2:], "Subject: ")
			subj = subj[:strings.Index(subj, "\r\n")]
			_, msg := regenerate(subj)
			if !strings.HasSuffix(s, msg) {
				t.Fatalf("%s: %s stored damaged or partial", e.Name(), subj)
			}
			found[subj] = true
		}
	}
	for subj := range acked {
		if !found[subj] {
			t.Errorf("%s was acknowledged with 250 but is not in the Maildir", subj)
		}
	}
	t.Logf("%d messages acknowledged, %d stored, over 20 kills", len(acked), len(found))
	if len(acked) < 20 {
		t.Fatalf("only %d acknowledgements: the load did not run", len(acked))
	}
}

// regenerate rebuilds the message with a given Subject, as next makes it.
func regenerate(subj string) (string, string) {
	body := strings.Repeat(subj+" line of filler text for a body of some size\r\n", 150)
	return subj, "Subject: " + subj + "\r\nMessage-ID: <" + subj + "@test>\r\n\r\n" + body
}

// crashLoad sends messages on one connection after another until the
// server goes away, calling acked for each 250 to DATA.
func crashLoad(addr string, next func() (string, string), acked func(subj string)) {
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		r := bufio.NewReader(c)
		reply := func() (string, error) {
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return "", err
				}
				if len(l) < 4 || l[3] != '-' {
					return l, nil
				}
			}
		}
		cmd := func(s string) (string, error) {
			if _, err := c.Write([]byte(s)); err != nil {
				return "", err
			}
			return reply()
		}
		if _, err := reply(); err != nil {
			c.Close()
			return
		}
		if _, err := cmd("EHLO load\r\n"); err != nil {
			c.Close()
			return
		}
		for range 5 {
			subj, msg := next()
			steps := []string{"MAIL FROM:<load@far.example>\r\n", "RCPT TO:<alice@local.example>\r\n", "DATA\r\n", msg + ".\r\n"}
			var l string
			for _, s := range steps {
				if l, err = cmd(s); err != nil {
					c.Close()
					return
				}
			}
			if strings.HasPrefix(l, "250") {
				acked(subj)
			}
		}
		c.Close()
	}
}

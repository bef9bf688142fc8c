package queue

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

const (
	childDirEnv  = "MAILAGENT_QUEUE_CRASH_DIR"
	childPortEnv = "MAILAGENT_QUEUE_CRASH_PORT"
)

// TestKillRestart queues messages in a child process that is killed with
// SIGKILL while it queues and retries; a new queue on the same spool then
// delivers every message the child acknowledged exactly once.
func TestKillRestart(t *testing.T) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	dead := deadPort(t)
	cmd, out := startChild(t, "TestKillRestart", childDirEnv+"="+dir, childPortEnv+"="+fmt.Sprint(portOf(t, dead)))
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		h, ok := strings.CutPrefix(sc.Text(), "ACK ")
		if !ok {
			continue
		}
		acked[h] = true
		if len(acked) == 40 && !killed {
			// Mid-stream: the child is committing the next message and
			// its scheduler is rewriting metadata of failed attempts.
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed: %v", werr)
	}

	srv := outboundtest.Start(t, outboundtest.Options{})
	f := &fixture{clock: newClock(), bounces: &recorder{}, dir: dir}
	f.clock.Set(time.Now().Add(time.Hour)) // everything is due
	f.q = f.open(t, srv.Port, nil)
	f.runDue(t)
	got := map[string]int{}
	for _, m := range srv.Messages() {
		sum := sha256.Sum256(m.Data)
		got[hex.EncodeToString(sum[:])]++
	}
	for h := range acked {
		if got[h] != 1 {
			t.Errorf("acknowledged message %s delivered %d times", h[:12], got[h])
		}
	}
	extra := 0
	for h, n := range got {
		if n != 1 {
			t.Errorf("message %s delivered %d times", h[:12], n)
		}
		if !acked[h] {
			extra++
		}
	}
	// At most the message whose Commit returned as the child died.
	if extra > 1 {
		t.Errorf("%d messages delivered that were never acknowledged", extra)
	}
	if ids := f.ids(t); len(ids) != 0 {
		t.Errorf("still queued: %v", ids)
	}
	for _, sub := range []string{tmpDir, msgDir} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		if len(ents) != 0 {
			t.Errorf("%s not empty: %d entries", sub, len(ents))
		}
	}
	if n := len(f.bounces.all()); n != 0 {
		t.Errorf("%d notifications", n)
	}
	t.Logf("%d acknowledged before the kill, %d delivered after restart", len(acked), len(got))
}

// crashChild queues distinct messages until it is killed, printing the
// hash of each one after Commit returned.
func crashChild(t *testing.T, dir string) {
	var port int
	fmt.Sscan(os.Getenv(childPortEnv), &port)
	c, err := outbound.New(outbound.Options{Hostname: "child", Resolver: resolver(), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	q, err := New(Options{Dir: dir, Courier: Outbound(c), Bounces: &recorder{}, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go q.Run(context.Background())
	queueUntilKilled(t, q, func(i int) string {
		pad := make([]byte, 512)
		rand.Read(pad)
		return fmt.Sprintf("Subject: crash %d\r\n\r\n%s\r\n", i, hex.EncodeToString(pad))
	})
}

// startChild runs this test binary's test named test in a child
// process with env added, and returns it with its standard output.
func startChild(t *testing.T, test string, env ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// queueUntilKilled, in a child process, queues the messages body(0),
// body(1)… for bob@b.test until the process is killed, printing
// "ACK " and the SHA-256 of each after Enqueue returned.
func queueUntilKilled(t *testing.T, q *Queue, body func(i int) string) {
	w := bufio.NewWriter(os.Stdout)
	for i := 0; i < 100000; i++ {
		b := body(i)
		if _, err := q.Enqueue(context.Background(), &mail.Envelope{From: "alice@a.test", Recipients: []string{"bob@b.test"}}, bytesBodyT(b)); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(b))
		fmt.Fprintf(w, "ACK %s\n", hex.EncodeToString(sum[:]))
		w.Flush()
	}
	t.Fatal("child was not killed")
}

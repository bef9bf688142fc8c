package queue

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

// TestSpoolLock: a spool has one queue at a time; another node's queue
// adopts nothing while it runs, and everything once it stopped, held
// messages staying held and the others due at once, whatever retry time
// the first node had set; the spool is then free for its own queue.
func TestSpoolLock(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{})
	a := newFixture(t, portOf(t, deadPort(t)), nil)
	if _, err := New(Options{Dir: a.dir, Courier: a.q.opts.Courier}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second queue on one spool: %v; want ErrLocked", err)
	}
	a.enqueue(t, "alice@a.test", []string{"bob@b.test"}, "Subject: one\r\n\r\none\r\n")
	held := a.enqueue(t, "alice@a.test", []string{"bob@b.test"}, "Subject: two\r\n\r\ntwo\r\n")
	if err := a.q.Hold(context.Background(), held); err != nil {
		t.Fatal(err)
	}
	a.runDue(t) // refused: the first message waits for its retry

	b := &fixture{clock: a.clock, bounces: &recorder{}, dir: t.TempDir()}
	b.q = b.open(t, srv.Port, func(o *Options) { o.Peers = []string{a.dir, filepath.Join(t.TempDir(), "not-mounted")} })
	if n, err := b.q.Adopt(context.Background()); n != 0 || err != nil {
		t.Fatalf("Adopt while the spool's queue runs = %d, %v", n, err)
	}
	a.q.Close()
	if n, err := b.q.Adopt(context.Background()); n != 2 || err != nil {
		t.Fatalf("Adopt of a stopped queue's spool = %d, %v; want 2", n, err)
	}
	b.runDue(t)
	if got := srv.Messages(); len(got) != 1 || !strings.Contains(string(got[0].Data), "Subject: one") {
		t.Fatalf("delivered %d messages; want the one not held", len(got))
	}
	if ids := b.ids(t); len(ids) != 1 || ids[0] != held {
		t.Fatalf("queued after delivery: %v; want the held %s", ids, held)
	}
	if in, err := b.q.Inspect(context.Background(), held); err != nil || !in.Held {
		t.Fatalf("adopted held message: %+v, %v", in, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(a.dir, msgDir)); len(ents) != 0 {
		t.Fatalf("adopted spool keeps %d files", len(ents))
	}
	again := a.open(t, srv.Port, nil)
	if n := again.Len(); n != 0 {
		t.Fatalf("the emptied spool's own queue has %d messages", n)
	}
}

const (
	adoptDirEnv  = "MAILAGENT_QUEUE_ADOPT_DIR"
	adoptPortEnv = "MAILAGENT_QUEUE_ADOPT_PORT"
)

// TestAdoptKilledNode runs a queue in a child process, a node, that
// queues messages and delivers them over one connection. While it
// lives, another node's queue given its spool adopts nothing (the
// lock is held across processes). It is killed with SIGKILL while the
// peer it delivers to holds back a message's reply; the other node
// then adopts its spool and delivers every message the child
// acknowledged. The one message whose reply the child never read is
// delivered twice, the duplicate RFC 1047 describes, and no other.
func TestAdoptKilledNode(t *testing.T) {
	if dir := os.Getenv(adoptDirEnv); dir != "" {
		adoptChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	const hold = 5 // the DATA whose reply waits for the kill
	var datas atomic.Int32
	atHold := make(chan struct{})
	killed := make(chan struct{})
	srv := outboundtest.Start(t, outboundtest.Options{DataReply: func(string) error {
		if datas.Add(1) == hold {
			close(atHold)
			<-killed
		}
		return nil
	}})
	defer func() {
		select {
		case <-killed:
		default:
			close(killed)
		}
	}()

	dirA := t.TempDir()
	cmd, out := startChild(t, "TestAdoptKilledNode", adoptDirEnv+"="+dirA, adoptPortEnv+"="+fmt.Sprint(srv.Port))
	var mu sync.Mutex
	acked := map[string]bool{}
	progress := make(chan struct{}, 1)
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if h, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
				mu.Lock()
				acked[h] = true
				mu.Unlock()
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}
	}()
	nAcked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}

	b := &fixture{clock: newClock(), bounces: &recorder{}, dir: t.TempDir()}
	b.clock.Set(time.Now().Add(time.Hour)) // everything is due
	b.q = b.open(t, srv.Port, func(o *Options) { o.Peers = []string{dirA} })

	select {
	case <-atHold:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the child delivered no messages")
	}
	for nAcked() < 3*hold {
		select {
		case <-progress:
		case <-eof:
			t.Fatal("the child stopped")
		}
	}
	// Alive, the child holds its spool's lock.
	if n, err := b.q.Adopt(context.Background()); n != 0 || err != nil {
		t.Fatalf("Adopt while the child runs = %d, %v", n, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-eof
	cmd.Wait()
	close(killed) // the peer now stores the message; its reply is lost

	n, err := b.q.Adopt(context.Background())
	if err != nil || n == 0 {
		t.Fatalf("Adopt after the kill = %d, %v", n, err)
	}
	b.runDue(t)
	msgs := srv.Messages()
	got := map[string]int{}
	for _, m := range msgs {
		sum := sha256.Sum256(m.Data)
		got[hex.EncodeToString(sum[:])]++
	}
	sum := sha256.Sum256(msgs[hold-1].Data)
	dup := hex.EncodeToString(sum[:])
	if got[dup] != 2 {
		t.Errorf("the message whose reply was lost delivered %d times; want 2", got[dup])
	}
	extra := 0
	for h, c := range got {
		if c != 1 && h != dup {
			t.Errorf("message %s delivered %d times", h[:12], c)
		}
		if !acked[h] {
			extra++
		}
	}
	for h := range acked {
		if got[h] == 0 {
			t.Errorf("acknowledged message %s never delivered", h[:12])
		}
	}
	// At most the message whose Commit returned as the child died.
	if extra > 1 {
		t.Errorf("%d messages delivered that were never acknowledged", extra)
	}
	if ids := b.ids(t); len(ids) != 0 {
		t.Errorf("still queued: %v", ids)
	}
	if ents, _ := os.ReadDir(filepath.Join(dirA, msgDir)); len(ents) != 0 {
		t.Errorf("the dead node's spool keeps %d files", len(ents))
	}
	t.Logf("%d acknowledged, %d adopted, %d deliveries", len(acked), n, len(msgs))
}

// adoptChild queues distinct messages until it is killed (see
// queueUntilKilled) and delivers them over one connection at a time.
func adoptChild(t *testing.T, dir string) {
	var port int
	fmt.Sscan(os.Getenv(adoptPortEnv), &port)
	c, err := outbound.New(outbound.Options{Hostname: "child", Resolver: resolver(), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	q, err := New(Options{Dir: dir, Courier: Outbound(c), Bounces: &recorder{}, PerDestination: 1, MaxConnections: 1})
	if err != nil {
		t.Fatal(err)
	}
	go q.Run(context.Background())
	queueUntilKilled(t, q, func(i int) string {
		return fmt.Sprintf("Subject: adopt %d\r\nMessage-ID: <%d.%d@child>\r\n\r\nbody\r\n", i, i, os.Getpid())
	})
}

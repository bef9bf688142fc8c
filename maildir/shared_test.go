package maildir

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sharedNodes is how many processes TestSharedStorageUIDs runs on one
// Maildir tree, and sharedPerWorker how many messages each of a node's
// two writers adds.
const (
	sharedNodes     = 3
	sharedPerWorker = 40
)

// TestSharedStorageNode is one node of TestSharedStorageUIDs: a Store of
// its own (its own hostname in file names, its own process) on the shared
// base. Two writers add messages to INBOX concurrently, one by Deliver
// (into new/, its UID given by whichever node syncs first) and one by
// Append (its UID given at once), each syncing the folder between
// messages so that nodes race to number each other's deliveries. It
// prints what it learnt, then waits for its standard input to close
// (every node is done) and prints the UID→key map it sees.
func TestSharedStorageNode(t *testing.T) {
	base := os.Getenv("MAILDIR_SHARED_BASE")
	if base == "" {
		t.Skip("child process of TestSharedStorageUIDs")
	}
	node := os.Getenv("MAILDIR_SHARED_NODE")
	s, err := New(base, &Options{Hostname: "node-" + node, NoWatcher: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	m, err := s.Open(ctx, filepath.Join(base, "Maildir"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.Folder(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	var failed error
	fail := func(err error) {
		mu.Lock()
		failed = err
		mu.Unlock()
	}
	wg.Go(func() {
		for i := range sharedPerWorker {
			body := fmt.Sprintf("Subject: deliver %s %d\r\n\r\nbody\r\n", node, i)
			d, err := s.Deliver(ctx, m.Path(), "INBOX", strings.NewReader(body), nil)
			if err != nil {
				fail(err)
				return
			}
			say("deliver %s %s", d.Key, body[len("Subject: "):strings.Index(body, "\r")])
			if err := f.Sync(ctx); err != nil {
				fail(err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range sharedPerWorker {
			body := fmt.Sprintf("Subject: append %s %d\r\n\r\nbody\r\n", node, i)
			uid, err := f.Append(ctx, strings.NewReader(body), nil, time.Time{})
			if err != nil {
				fail(err)
				return
			}
			say("append %d %s", uid, body[len("Subject: "):strings.Index(body, "\r")])
			if _, err := f.Snapshot(ctx); err != nil {
				fail(err)
				return
			}
		}
	})
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
	say("ready")
	out.Flush()
	io.Copy(io.Discard, os.Stdin) // every node has written all it will
	snap, err := f.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range snap.Messages {
		say("uid %d %s", msg.UID, msg.Key)
	}
	say("end")
	out.Flush()
}

// TestSharedStorageUIDs runs sharedNodes processes (this test binary
// re-executed, each with its own Store and hostname, as mailagent nodes
// sharing a Maildir tree over NFS) writing into one folder at once, and
// checks that UIDs stayed consistent: every message has exactly one UID,
// UIDs run 1..N without gap or reuse, a UID Append returned names the
// message appended, and every node, and a fresh Store opened afterwards,
// see the same UID→message map.
func TestSharedStorageUIDs(t *testing.T) {
	base := t.TempDir()
	type node struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		lines *bufio.Scanner
	}
	nodes := make([]*node, sharedNodes)
	for i := range nodes {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSharedStorageNode$", "-test.count=1")
		cmd.Env = append(os.Environ(), "MAILDIR_SHARED_BASE="+base, "MAILDIR_SHARED_NODE="+strconv.Itoa(i))
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &node{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	}
	for _, n := range nodes {
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.cmd.Process.Kill(); n.cmd.Wait() })
	}
	appended := map[uint32]string{}  // UID Append returned → subject
	delivered := map[string]string{} // key → subject
	for i, n := range nodes {
		for n.lines.Scan() {
			f := strings.SplitN(n.lines.Text(), " ", 3)
			if f[0] == "ready" {
				break
			}
			switch {
			case f[0] == "append" && len(f) == 3:
				uid, _ := strconv.ParseUint(f[1], 10, 32)
				if prev, dup := appended[uint32(uid)]; dup {
					t.Errorf("UID %d returned by Append for %q and for %q", uid, prev, f[2])
				}
				appended[uint32(uid)] = f[2]
			case f[0] == "deliver" && len(f) == 3:
				delivered[f[1]] = f[2]
			}
		}
		if err := n.lines.Err(); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	total := sharedNodes * 2 * sharedPerWorker
	if len(appended)+len(delivered) != total {
		t.Fatalf("nodes reported %d appends and %d deliveries, want %d in all", len(appended), len(delivered), total)
	}
	maps := make([]map[uint32]string, sharedNodes)
	for _, n := range nodes {
		n.stdin.Close()
	}
	for i, n := range nodes {
		maps[i] = map[uint32]string{}
		for n.lines.Scan() && n.lines.Text() != "end" {
			var uid uint32
			var key string
			if _, err := fmt.Sscanf(n.lines.Text(), "uid %d %s", &uid, &key); err != nil {
				t.Fatalf("node %d: %q: %v", i, n.lines.Text(), err)
			}
			maps[i][uid] = key
		}
		if err := n.cmd.Wait(); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}

	// A Store opened afterwards, as a node restarting, reads the same map
	// and the message each UID names.
	s := newTestStore(t, &Options{Hostname: "node-check"})
	ctx := context.Background()
	m, err := s.Open(ctx, filepath.Join(base, "Maildir"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f := folder(t, m, "INBOX")
	snap := snapshot(t, f)
	if len(snap.Messages) != total {
		t.Fatalf("folder holds %d messages, want %d", len(snap.Messages), total)
	}
	want := map[uint32]string{}
	keys := map[string]uint32{}
	for i, msg := range snap.Messages {
		if msg.UID != uint32(i+1) {
			t.Fatalf("message %d has UID %d: UIDs skipped", i+1, msg.UID)
		}
		if prev, dup := keys[msg.Key]; dup {
			t.Fatalf("%s has UIDs %d and %d", msg.Key, prev, msg.UID)
		}
		keys[msg.Key] = msg.UID
		want[msg.UID] = msg.Key
		subject := subjectOf(t, f, msg.UID)
		if s, ok := appended[msg.UID]; ok && s != subject {
			t.Errorf("UID %d: Append returned it for %q, it holds %q", msg.UID, s, subject)
		}
		if s, ok := delivered[msg.Key]; ok && s != subject {
			t.Errorf("%s (UID %d): delivered as %q, holds %q", msg.Key, msg.UID, s, subject)
		}
		if _, ok := appended[msg.UID]; !ok && delivered[msg.Key] == "" {
			t.Errorf("UID %d (%s) is neither a reported append nor a delivery", msg.UID, msg.Key)
		}
	}
	if snap.UIDNext != uint32(total+1) {
		t.Errorf("UIDNEXT %d, want %d", snap.UIDNext, total+1)
	}
	for i, got := range maps {
		if len(got) != len(want) {
			t.Errorf("node %d sees %d messages, want %d", i, len(got), len(want))
		}
		for uid, key := range want {
			if got[uid] != key {
				t.Errorf("node %d: UID %d is %q, the folder says %q", i, uid, got[uid], key)
			}
		}
	}
}

// subjectOf reads message uid's Subject field value.
func subjectOf(t *testing.T, f *Folder, uid uint32) string {
	t.Helper()
	fh, _, err := f.Open(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	line, err := bufio.NewReader(fh).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "Subject: "))
}

// TestPollSeesOtherNode watches a folder through a Store whose file-system
// watcher is off, so that only its poll can see what a second Store on
// the same tree (another node) does: a delivery, a flag change and an
// expunge each reach the watcher, under the UIDs the other node sees.
func TestPollSeesOtherNode(t *testing.T) {
	base := t.TempDir()
	opts := func(host string) *Options {
		return &Options{Hostname: host, NoWatcher: true, PollInterval: 20 * time.Millisecond}
	}
	a, err := New(base, opts("node-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(base, opts("node-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ma, mb := openUser(t, a), openUser(t, b)
	fa, fb := folder(t, ma, "INBOX"), folder(t, mb, "INBOX")
	ch, err := fa.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, b, mb, "INBOX", msg("from b", 100))
	snapB := snapshot(t, fb)
	if len(snapB.Messages) != 1 {
		t.Fatalf("node b sees %d messages", len(snapB.Messages))
	}
	uid := snapB.Messages[0].UID
	waitKind(t, ch, EventNew, uid)
	if _, err := fb.StoreFlags(t.Context(), []uint32{uid}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	waitKind(t, ch, EventFlags, uid)
	if m, err := fa.Message(t.Context(), uid); err != nil || !m.HasFlag(FlagSeen) {
		t.Fatalf("node a: UID %d flags %v (%v), want \\Seen", uid, m.Flags, err)
	}
	if _, err := fb.Expunge(t.Context(), []uint32{uid}); err != nil {
		t.Fatal(err)
	}
	waitKind(t, ch, EventExpunged, uid)
}

// waitKind waits for an event of kind naming uid, passing over repeats of
// earlier changes (an event may repeat what the watcher was told).
func waitKind(t *testing.T, ch <-chan Event, kind EventKind, uid uint32) {
	t.Helper()
	deadline := time.After(time.Minute) // only a failing run waits it out; a loaded machine under -race is slow
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed")
			}
			if ev.Kind == kind && slices.Contains(ev.UIDs, uid) {
				return
			}
			if ev.Kind == EventReset {
				t.Fatalf("EventReset while waiting for event %d of UID %d", kind, uid)
			}
		case <-deadline:
			t.Fatalf("no event %d of UID %d within 10s", kind, uid)
		}
	}
}

// TestPollNoChangeDoesNotList checks what keeps the poll cheap on a big
// folder: a poll of a folder nobody changed stats it and lists nothing,
// and a delivery by another Store (another node) makes the next poll list
// it once and report the message.
func TestPollNoChangeDoesNotList(t *testing.T) {
	base := t.TempDir()
	a, err := New(base, &Options{Hostname: "node-a", NoWatcher: true, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(base, &Options{Hostname: "node-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ma := openUser(t, a)
	for i := range 3 {
		deliver(t, a, ma, "INBOX", msg(fmt.Sprint("old ", i), 100))
	}
	f := folder(t, ma, "INBOX")
	snapshot(t, f)
	// Directories last changed outside the window in which a change
	// could hide in the same mtime tick, as on a folder at rest.
	old := time.Now().Add(-time.Hour)
	for _, sub := range []string{"new", "cur"} {
		if err := os.Chtimes(filepath.Join(ma.Path(), sub), old, old); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := f.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	scans := func() int {
		f.st.mu.Lock()
		defer f.st.mu.Unlock()
		return f.st.scans
	}
	f.st.refresh(t.Context()) // takes in the aged stamps
	before := scans()
	for range 5 {
		f.st.refresh(t.Context())
	}
	if got := scans() - before; got != 0 {
		t.Fatalf("5 polls of an unchanged folder listed it %d times", got)
	}
	mb := openUser(t, b)
	deliver(t, b, mb, "INBOX", msg("from b", 100))
	f.st.refresh(t.Context())
	if got := scans() - before; got != 1 {
		t.Fatalf("the poll after another node's delivery listed the folder %d times, want 1", got)
	}
	waitKind(t, ch, EventNew, 4)
}

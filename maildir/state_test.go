package maildir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newTestStore(t, &Options{PollInterval: 200 * time.Millisecond})
	m := openUser(t, s)
	in := folder(t, m, "INBOX")
	ch, err := in.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Same process: a delivery is announced at once.
	deliver(t, s, m, "INBOX", msg("w", 100))
	if ev := waitEvent(t, ch, 5*time.Second); ev.Kind != EventNew || !slices.Equal(ev.UIDs, []uint32{1}) {
		t.Fatalf("event %+v", ev)
	}
	if _, err := in.StoreFlags(ctx, []uint32{1}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, ch, 5*time.Second); ev.Kind != EventFlags {
		t.Fatalf("event %+v", ev)
	}
	// Another process (here: a manual mv) flags the message: seen within
	// the 2 seconds promised.
	cur := filesIn(t, m.Path(), "cur")
	old := filepath.Join(m.Path(), "cur", cur[0])
	if err := os.Rename(old, strings.TrimSuffix(old, "S")+"FS"); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, ch, 2*time.Second); ev.Kind != EventFlags || !slices.Equal(ev.UIDs, []uint32{1}) {
		t.Fatalf("event %+v", ev)
	}
	got, _ := in.Message(ctx, 1)
	if !slices.Equal(got.Flags, []string{`\Flagged`, `\Seen`}) {
		t.Fatalf("flags %v", got.Flags)
	}
	// An outside delete is an expunge.
	os.Remove(strings.TrimSuffix(old, "S") + "FS")
	if ev := waitEvent(t, ch, 2*time.Second); ev.Kind != EventExpunged || !slices.Equal(ev.UIDs, []uint32{1}) {
		t.Fatalf("event %+v", ev)
	}
	cancel()
	for range ch {
	}
}

func TestIndexSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	for i := range 20 {
		deliver(t, s, m, "INBOX", msg(strings.Repeat("x", i), 100+i))
	}
	snap := snapshot(t, folder(t, m, "INBOX"))
	// Let the directories' mtimes age past the dirty window so the index
	// is trusted, then close: the last handle writes the index.
	old := time.Now().Add(-time.Hour)
	for _, sub := range []string{"new", "cur"} {
		os.Chtimes(filepath.Join(m.Path(), sub), old, old)
	}
	in := folder(t, m, "INBOX")
	in.Sync(ctx)
	m.Close()
	if _, err := os.Stat(filepath.Join(m.Path(), indexName)); err != nil {
		t.Fatal("no index written:", err)
	}
	// Change a file's mtime behind the index's back: a restart that
	// trusts the index does not stat the file, so it reports the old date.
	first := filesIn(t, m.Path(), "cur")[0]
	os.Chtimes(filepath.Join(m.Path(), "cur", first), old, old)
	s2 := newStoreAt(t, s.base)
	m2 := openPath(t, s2, m.Path())
	snap2 := snapshot(t, folder(t, m2, "INBOX"))
	if len(snap2.Messages) != 20 || snap2.UIDValidity != snap.UIDValidity {
		t.Fatalf("after restart %d messages", len(snap2.Messages))
	}
	for i := range snap2.Messages {
		if !snap2.Messages[i].InternalDate.Equal(snap.Messages[i].InternalDate) {
			t.Fatalf("message %d: date %v re-read from the file, want the indexed %v", i, snap2.Messages[i].InternalDate, snap.Messages[i].InternalDate)
		}
	}
}

func TestCorruptFilesRebuilt(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	for i := range 5 {
		deliver(t, s, m, "INBOX", msg("c", 100+i))
	}
	snap := snapshot(t, folder(t, m, "INBOX"))
	if err := m.SetQuota(ctx, Quota{Bytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	for name, content := range map[string]string{
		uidlistName:     "3 V" + itoa(int64(snap.UIDValidity)) + " N6\n1 :" + snap.Messages[0].Key + "\ngarbage line\n",
		indexName:       "MAILAGENT-INDEX 1\n\x01\x02",
		maildirsizeName: "1048576S\n12 x\n",
		keywordsName:    "0 ok\nzz bad\n",
	} {
		mustWriteFile(t, filepath.Join(m.Path(), name), content)
	}
	s2 := newStoreAt(t, s.base)
	m2 := openPath(t, s2, m.Path())
	snap2 := snapshot(t, folder(t, m2, "INBOX"))
	if len(snap2.Messages) != 5 || snap2.UIDValidity != snap.UIDValidity || snap2.Messages[0].UID != 1 {
		t.Fatalf("after corruption: %+v", snap2)
	}
	u, err := m2.Quota(ctx)
	if err != nil || u.Messages != 5 || u.Limit.Bytes != 1<<20 {
		t.Fatalf("quota %+v %v", u, err)
	}
	// A lost uidlist: a new one, and everything numbered again.
	m2.Close()
	os.Remove(filepath.Join(m.Path(), uidlistName))
	os.Remove(filepath.Join(m.Path(), indexName))
	s3 := newStoreAt(t, s.base)
	m3 := openPath(t, s3, m.Path())
	if snap3 := snapshot(t, folder(t, m3, "INBOX")); len(snap3.Messages) != 5 {
		t.Fatalf("after loss: %+v", snap3)
	}
}

func mustWriteFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestQuota(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	lim := Quota{Bytes: 1000, Messages: 3}
	body := msg("q", 300)
	for i := range 3 {
		if _, err := s.Deliver(ctx, m.Path(), "INBOX", strings.NewReader(body), &DeliverOptions{Quota: &lim}); err != nil {
			t.Fatal(i, err)
		}
	}
	_, err := s.Deliver(ctx, m.Path(), "INBOX", strings.NewReader("x"), &DeliverOptions{Quota: &lim})
	var qe *QuotaError
	if !errors.As(err, &qe) || !errors.Is(err, ErrOverQuota) || qe.Usage.Messages != 3 {
		t.Fatalf("fourth delivery: %v", err)
	}
	if n := len(filesIn(t, m.Path(), "new")); n != 3 {
		t.Fatalf("%d files in new/", n)
	}
	in := folder(t, m, "INBOX")
	snapshot(t, in)
	if _, err := in.Append(ctx, strings.NewReader("x"), nil, time.Time{}); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("append over quota: %v", err)
	}
	if _, err := in.Expunge(ctx, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	u, err := m.Quota(ctx)
	if err != nil || u.Messages != 2 || u.Bytes != 2*int64(len(body)) {
		t.Fatalf("usage %+v %v", u, err)
	}
	data, _ := os.ReadFile(filepath.Join(m.Path(), maildirsizeName))
	if !strings.HasPrefix(string(data), "1000S,3C\n") {
		t.Fatalf("maildirsize %q", data)
	}
	// Too long: recalculated, as Maildir++ requires past 5120 bytes.
	f, _ := os.OpenFile(filepath.Join(m.Path(), maildirsizeName), os.O_APPEND|os.O_WRONLY, 0)
	for range 1300 {
		f.WriteString("0 0\n")
	}
	f.Close()
	if u, err = m.Quota(ctx); err != nil || u.Messages != 2 {
		t.Fatalf("after recalculation %+v %v", u, err)
	}
	if st, _ := os.Stat(filepath.Join(m.Path(), maildirsizeName)); st.Size() > 100 {
		t.Fatalf("maildirsize not recalculated: %d bytes", st.Size())
	}
}

func TestTmpCleanup(t *testing.T) {
	ctx := context.Background()
	future := time.Now().Add(37 * time.Hour)
	s := newTestStore(t, nil)
	m := openUser(t, s)
	stale := filepath.Join(m.Path(), "tmp", "stale")
	mustWriteFile(t, stale, "partial")
	s2 := newStoreAt(t, s.base)
	if err := s2.CleanTmp(ctx, m.Path()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatal("fresh tmp file removed")
	}
	s3, _ := New(s.base, &Options{now: func() time.Time { return future }})
	defer s3.Close()
	if err := s3.CleanTmp(ctx, m.Path()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("tmp file older than 36 h kept")
	}
}

func TestSessionLock(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	unlock, err := m.TryLock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.TryLock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := m.Lock(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting lock: %v", err)
	}
	unlock()
	u2, err := m.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u2()
}

func TestConcurrentDeliveries(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	in := folder(t, m, "INBOX")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 10 {
				if _, err := s.Deliver(ctx, m.Path(), "INBOX", strings.NewReader(msg("c", 50+w*10+i)), nil); err != nil {
					t.Error(err)
				}
			}
		})
		wg.Go(func() {
			if _, err := in.Snapshot(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	snap := snapshot(t, in)
	if len(snap.Messages) != 80 || snap.UIDNext != 81 {
		t.Fatalf("%d messages, UIDNEXT %d", len(snap.Messages), snap.UIDNext)
	}
	for i, msg := range snap.Messages {
		if msg.UID != uint32(i+1) {
			t.Fatalf("UIDs not dense: %d at %d", msg.UID, i)
		}
	}
}

func TestDeliverFlagsAndFolders(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	date := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)
	_, err := s.Deliver(ctx, m.Path(), "Lists.go", strings.NewReader("x\n"), &DeliverOptions{Flags: []string{FlagSeen, "Junk"}, Date: date})
	if !errors.Is(err, ErrNoFolder) {
		t.Fatalf("missing folder: %v", err)
	}
	if _, err := s.Deliver(ctx, m.Path(), "Lists.go", strings.NewReader("x\n"), &DeliverOptions{Flags: []string{FlagSeen, "Junk"}, Date: date, CreateFolder: true}); err != nil {
		t.Fatal(err)
	}
	got, err := folder(t, m, "Lists.go").Message(ctx, 1)
	if err != nil || !slices.Equal(got.Flags, []string{`\Seen`, "Junk"}) || !got.InternalDate.Equal(date) || got.VSize != 3 {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestTooLargeAndGroupCommitErrors(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, &Options{MaxMessageSize: 100})
	m := openUser(t, s)
	if _, err := s.Deliver(ctx, m.Path(), "INBOX", strings.NewReader(msg("big", 500)), nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized delivery: %v", err)
	}
	if got := filesIn(t, m.Path(), "tmp"); len(got) != 0 {
		t.Fatalf("tmp/ keeps %v", got)
	}
	// Every caller sharing a failed directory fsync gets the error.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() { errs <- s.syncers.syncDir(ctx, filepath.Join(m.Path(), "missing")) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("shared fsync error: %v", err)
		}
	}
	if n := s.syncers.fsyncs.Load(); n < 1 || n > 20 {
		t.Fatalf("%d fsyncs for 20 callers", n)
	}
}

func TestStaleDotlocks(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	deliver(t, s, m, "INBOX", msg("l", 50))
	lp := filepath.Join(m.Path(), uidlistName+".lock")
	// Left by a previous run with our pid (a restarted container's pid 1),
	// and by a dead process on this host: both are broken at once.
	old := time.Now().Add(-time.Minute)
	for _, owner := range []string{itoa(int64(os.Getpid())), "999999999"} {
		mustWriteFile(t, lp, owner+":"+s.host)
		os.Chtimes(lp, old, old)
		cctx, cancel := context.WithTimeout(ctx, time.Minute) // a bound for a failing run only
		_, err := folder(t, m, "INBOX").Snapshot(cctx)
		cancel()
		if err != nil {
			t.Fatalf("lock of %s not broken: %v", owner, err)
		}
		deliver(t, s, m, "INBOX", msg("l", 50))
	}
	// A live holder elsewhere is waited for.
	mustWriteFile(t, lp, "1:another-host")
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := folder(t, m, "INBOX").Snapshot(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("live lock: %v", err)
	}
	os.Remove(lp)
}

// TestDeliverySeenAtOnce: a delivery through the Store shows in the next
// Snapshot even when another change of the same instant made the folder
// state adopt the directories' new stamps (as a scan moving files from
// new/ to cur/ does while deliveries keep arriving).
func TestDeliverySeenAtOnce(t *testing.T) {
	s := newTestStore(t, nil)
	m := openUser(t, s)
	in := folder(t, m, "INBOX")
	deliver(t, s, m, "INBOX", msg("a", 40))
	snapshot(t, in)
	d := deliver(t, s, m, "INBOX", msg("b", 40))
	in.st.mu.Lock()
	in.st.adoptOwnChange()
	in.st.mu.Unlock()
	snap := snapshot(t, in)
	if len(snap.Messages) != 2 || snap.Messages[1].Key != d.Key {
		t.Fatalf("%d messages after two deliveries", len(snap.Messages))
	}
}

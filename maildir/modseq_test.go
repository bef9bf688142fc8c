package maildir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func uidsOf(ms []Message) []uint32 {
	var out []uint32
	for _, m := range ms {
		out = append(out, m.UID)
	}
	return out
}

func highest(t testing.TB, f *Folder) uint64 {
	t.Helper()
	h, err := f.HighestModSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestModSeqFlagChanges(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	for i := range 3 {
		deliver(t, s, m, "INBOX", msg(fmt.Sprint(i), 100))
	}
	in := folder(t, m, "INBOX")
	snap := snapshot(t, in)
	h0 := snap.HighestModSeq
	for _, x := range snap.Messages {
		if x.ModSeq == 0 || x.ModSeq > h0 {
			t.Fatalf("message %d modseq %d, highest %d", x.UID, x.ModSeq, h0)
		}
	}
	out, err := in.StoreFlags(ctx, []uint32{2}, FlagsAdd, []string{FlagSeen, "$Label1"})
	if err != nil {
		t.Fatal(err)
	}
	h1 := highest(t, in)
	if h1 <= h0 || len(out) != 1 || out[0].ModSeq != h1 {
		t.Fatalf("after STORE: highest %d (was %d), returned %+v", h1, h0, out)
	}
	// A store that changes nothing gives no modseq.
	if _, err := in.StoreFlags(ctx, []uint32{2}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	if h := highest(t, in); h != h1 {
		t.Fatalf("no-op store moved highest %d → %d", h1, h)
	}
	ch, err := in.ChangedSince(ctx, h0)
	if err != nil || !slices.Equal(uidsOf(ch), []uint32{2}) {
		t.Fatalf("ChangedSince(%d) = %v, %v", h0, uidsOf(ch), err)
	}
	if ch, _ := in.ChangedSince(ctx, 0); len(ch) != 3 {
		t.Fatalf("ChangedSince(0) = %v", uidsOf(ch))
	}
	if ch, _ := in.ChangedSince(ctx, h1); len(ch) != 0 {
		t.Fatalf("ChangedSince(highest) = %v", uidsOf(ch))
	}
	// Expunge: a new modseq, recorded for VANISHED (EARLIER).
	if _, err := in.Expunge(ctx, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	h2 := highest(t, in)
	gone, complete, err := in.ExpungedSince(ctx, h1)
	if err != nil || !complete || !slices.Equal(gone, []uint32{1}) || h2 <= h1 {
		t.Fatalf("ExpungedSince(%d) = %v %v %v, highest %d", h1, gone, complete, err, h2)
	}
	if gone, _, _ := in.ExpungedSince(ctx, h2); len(gone) != 0 {
		t.Fatalf("ExpungedSince(highest) = %v", gone)
	}
	// Append and copy: new messages get a new modseq.
	uid, err := in.Append(ctx, strings.NewReader("Subject: a\r\n\r\nx\r\n"), nil, timeUnix(1e9, 0))
	if err != nil {
		t.Fatal(err)
	}
	ch, _ = in.ChangedSince(ctx, h2)
	if !slices.Equal(uidsOf(ch), []uint32{uid}) || ch[0].ModSeq != highest(t, in) || ch[0].SaveDate == 0 {
		t.Fatalf("after APPEND: %+v", ch)
	}
}

func TestStoreFlagsIf(t *testing.T) {
	ctx := context.Background()
	in, h0 := twoMessages(t)
	if _, err := in.StoreFlags(ctx, []uint32{2}, FlagsAdd, []string{FlagFlagged}); err != nil {
		t.Fatal(err)
	}
	changed, failed, err := in.StoreFlagsIf(ctx, []uint32{1, 2}, FlagsAdd, []string{FlagSeen}, h0)
	if err != nil || !slices.Equal(uidsOf(changed), []uint32{1}) || !slices.Equal(failed, []uint32{2}) {
		t.Fatalf("StoreFlagsIf = %v %v %v", uidsOf(changed), failed, err)
	}
	got, _ := in.Message(ctx, 2)
	if got.HasFlag(FlagSeen) {
		t.Fatal("the failed message was changed")
	}
	// A change made on disk by another program counts too.
	h := highest(t, in)
	cur := filesIn(t, in.st.dir, "cur")
	for _, n := range cur {
		if strings.HasSuffix(n, ":2,S") {
			p := filepath.Join(in.st.dir, "cur", n)
			if err := os.Rename(p, p+"T"); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, failed, err = in.StoreFlagsIf(ctx, []uint32{1}, FlagsAdd, []string{FlagAnswered}, h)
	if err != nil || !slices.Equal(failed, []uint32{1}) {
		t.Fatalf("after an outside rename: failed %v, %v", failed, err)
	}
}

func TestModSeqSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	s, err := New(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.UserPath("example.org", "alice")
	m, _ := s.Open(ctx, p)
	for i := range 4 {
		deliver(t, s, m, "INBOX", msg(fmt.Sprint(i), 100))
	}
	in := folder(t, m, "INBOX")
	h0 := snapshot(t, in).HighestModSeq
	in.Expunge(ctx, []uint32{4})
	in.StoreFlags(ctx, []uint32{3}, FlagsAdd, []string{FlagSeen}) // in the log only
	if _, err := in.Append(ctx, strings.NewReader("Subject: x\r\n\r\ny\r\n"), nil, timeUnix(1e9, 0)); err != nil {
		t.Fatal(err) // in the log only
	}
	before := snapshot(t, in)
	// A second Store reads what is on disk as a restart after kill -9
	// would: the first one is not closed (Close writes the index whole).
	defer s.Close()

	s2 := newStoreAt(t, base)
	m2 := openUser(t, s2)
	in2 := folder(t, m2, "INBOX")
	after := snapshot(t, in2)
	if after.HighestModSeq != before.HighestModSeq {
		t.Fatalf("highest %d after restart, %d before", after.HighestModSeq, before.HighestModSeq)
	}
	if len(after.Messages) != len(before.Messages) {
		t.Fatalf("%d messages after restart, %d before", len(after.Messages), len(before.Messages))
	}
	for i := range before.Messages {
		if after.Messages[i].ModSeq != before.Messages[i].ModSeq || after.Messages[i].SaveDate != before.Messages[i].SaveDate {
			t.Fatalf("message %d: %+v after restart, %+v before", i, after.Messages[i], before.Messages[i])
		}
	}
	ch, _ := in2.ChangedSince(ctx, h0)
	gone, complete, _ := in2.ExpungedSince(ctx, h0)
	if !slices.Equal(uidsOf(ch), []uint32{3, 5}) || !slices.Equal(gone, []uint32{4}) || !complete {
		t.Fatalf("after restart: changed %v, expunged %v (complete %v)", uidsOf(ch), gone, complete)
	}
}

// Two Stores on one tree stand for two processes (or nodes): each sees
// the other's changes with the modseqs the other gave them, and modseqs
// never collide or go back.
func TestModSeqTwoWriters(t *testing.T) {
	ctx := context.Background()
	a, b := twoWriters(t)
	out1, err := a.StoreFlags(ctx, []uint32{1}, FlagsAdd, []string{FlagSeen})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := b.Message(ctx, 1)
	if got.ModSeq != out1[0].ModSeq || !got.HasFlag(FlagSeen) {
		t.Fatalf("second writer sees %+v, first wrote %+v", got, out1[0])
	}
	out2, err := b.StoreFlags(ctx, []uint32{2}, FlagsAdd, []string{FlagFlagged})
	if err != nil {
		t.Fatal(err)
	}
	if out2[0].ModSeq <= out1[0].ModSeq {
		t.Fatalf("second writer's modseq %d not above the first's %d", out2[0].ModSeq, out1[0].ModSeq)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	sa, sb := snapshot(t, a), snapshot(t, b)
	if sa.HighestModSeq != sb.HighestModSeq {
		t.Fatalf("highest %d vs %d", sa.HighestModSeq, sb.HighestModSeq)
	}
	for i := range sa.Messages {
		if sa.Messages[i].ModSeq != sb.Messages[i].ModSeq {
			t.Fatalf("message %d: modseq %d vs %d", sa.Messages[i].UID, sa.Messages[i].ModSeq, sb.Messages[i].ModSeq)
		}
	}
	// Concurrent changes from both: every modseq handed out is distinct.
	// Each writer toggles a flag of its own, so that every STORE changes
	// the message (a STORE that changes nothing answers the modseq the
	// other writer gave it).
	done := make(chan []Message, 2)
	for _, w := range []struct {
		f    *Folder
		flag string
	}{{a, FlagAnswered}, {b, FlagDraft}} {
		f, flag := w.f, w.flag
		go func() {
			var all []Message
			for i := range 10 {
				op := FlagsAdd
				if i%2 == 1 {
					op = FlagsRemove
				}
				out, err := f.StoreFlags(ctx, []uint32{3}, op, []string{flag})
				if err != nil {
					t.Error(err)
				}
				all = append(all, out...)
			}
			done <- all
		}()
	}
	seen := map[uint64]bool{}
	for range 2 {
		for _, x := range <-done {
			if seen[x.ModSeq] {
				t.Fatalf("modseq %d handed out twice", x.ModSeq)
			}
			seen[x.ModSeq] = true
		}
	}
}

// A flag change made outside (a rename in cur/, as Dovecot or a mv does)
// and a move from new/ to cur/ get new modseqs when noticed.
func TestModSeqOutsideRename(t *testing.T) {
	ctx := context.Background()
	in, h0 := twoMessages(t)
	dir := in.st.dir
	name := fileOf(t, in, 2)
	if err := os.Rename(filepath.Join(dir, "cur", name), filepath.Join(dir, "cur", name+"F")); err != nil {
		t.Fatal(err)
	}
	if err := in.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ch, _ := in.ChangedSince(ctx, h0)
	if !slices.Equal(uidsOf(ch), []uint32{2}) || ch[0].ModSeq <= h0 || !ch[0].HasFlag(FlagFlagged) {
		t.Fatalf("after an outside rename: %+v", ch)
	}
	// A file delivered by hand into new/ is new at a new modseq.
	h1 := highest(t, in)
	if err := os.WriteFile(filepath.Join(dir, "new", "1700000000.M1P1.host,S=3"), []byte("x\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in.Sync(ctx)
	if ch, _ := in.ChangedSince(ctx, h1); len(ch) != 1 || ch[0].UID != 3 {
		t.Fatalf("after a delivery by hand: %+v", ch)
	}
}

// BenchmarkChangedSince: 10 messages changed in folders of 10,000 and
// 100,000 messages, against the baseline of finding them by a scan of a
// Snapshot (what an index without a modseq order would do).
func BenchmarkChangedSince(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10_000, 100_000} {
		base := b.TempDir()
		dir := bigFolder(b, base, n)
		s := newStoreAt(b, base)
		m, err := s.Open(ctx, dir)
		if err != nil {
			b.Fatal(err)
		}
		in := folder(b, m, "INBOX")
		h := highest(b, in)
		for i := range 10 {
			if _, err := in.StoreFlags(ctx, []uint32{uint32(i*(n/10) + 1)}, FlagsAdd, []string{FlagFlagged}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("%d/changedsince", n), func(b *testing.B) {
			for range b.N {
				ch, err := in.ChangedSince(ctx, h)
				if err != nil || len(ch) != 10 {
					b.Fatal(len(ch), err)
				}
			}
		})
		b.Run(fmt.Sprintf("%d/baseline-snapshot-scan", n), func(b *testing.B) {
			for range b.N {
				snap, err := in.Snapshot(ctx)
				if err != nil {
					b.Fatal(err)
				}
				var ch []Message
				for _, x := range snap.Messages {
					if x.ModSeq > h {
						ch = append(ch, x)
					}
				}
				if len(ch) != 10 {
					b.Fatal(len(ch))
				}
			}
		})
		m.Close()
	}
}

// twoMessages returns an INBOX with two delivered messages, and its
// highest modseq.
func twoMessages(t *testing.T) (*Folder, uint64) {
	s := newTestStore(t, nil)
	m := openUser(t, s)
	deliver(t, s, m, "INBOX", msg("a", 100))
	deliver(t, s, m, "INBOX", msg("b", 100))
	in := folder(t, m, "INBOX")
	return in, snapshot(t, in).HighestModSeq
}

// fileOf returns the name in cur/ of message uid's file, found by its
// key: names do not sort in delivery order (the microsecond field has no
// leading zeros).
func fileOf(t *testing.T, in *Folder, uid uint32) string {
	t.Helper()
	m, err := in.Message(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range filesIn(t, in.st.dir, "cur") {
		if strings.HasPrefix(n, m.Key) {
			return n
		}
	}
	t.Fatalf("no file for key %s in cur/", m.Key)
	return ""
}

// An index rewritten by another writer is taken in even when its stamp
// repeats (same mtime tick, size and a reused inode): the log's header
// names the new generation, and the content decides.
func TestMergeIndexWhoseStampRepeats(t *testing.T) {
	ctx := context.Background()
	a, b := twoWriters(t)
	out, err := b.StoreFlags(ctx, []uint32{1}, FlagsAdd, []string{FlagFlagged})
	if err != nil {
		t.Fatal(err)
	}
	b.st.mu.Lock()
	b.st.saveIndex(ctx) // a new generation
	b.st.mu.Unlock()
	p := filepath.Join(a.st.dir, indexName)
	st, ok := statStamp(p)
	if !ok {
		t.Fatal("no index")
	}
	a.st.mu.Lock()
	a.st.idxStamp = st // as if the rewrite had left the stamp a read
	a.st.mu.Unlock()
	mine, err := a.StoreFlags(ctx, []uint32{2}, FlagsAdd, []string{FlagSeen})
	if err != nil {
		t.Fatal(err)
	}
	if mine[0].ModSeq <= out[0].ModSeq {
		t.Fatalf("modseq %d after the other writer's %d", mine[0].ModSeq, out[0].ModSeq)
	}
	a.st.mu.Lock()
	got := a.st.ents[1].modseq
	a.st.mu.Unlock()
	if got != out[0].ModSeq {
		t.Fatalf("the other writer's change: modseq %d, want %d", got, out[0].ModSeq)
	}
}

// twoWriters returns the INBOX of one Maildir of three messages through
// two Stores (two processes, or nodes), both loaded.
func twoWriters(t *testing.T) (a, b *Folder) {
	t.Helper()
	base := t.TempDir()
	s1, s2 := newStoreAt(t, base), newStoreAt(t, base)
	m1, m2 := openUser(t, s1), openUser(t, s2)
	for i := range 3 {
		deliver(t, s1, m1, "INBOX", msg(fmt.Sprint(i), 100))
	}
	a, b = folder(t, m1, "INBOX"), folder(t, m2, "INBOX")
	snapshot(t, a)
	snapshot(t, b)
	return a, b
}

// An index is not trusted on a dovecot-uidlist whose stamp repeats
// across a rewrite: its header shows the new UIDVALIDITY, and the
// folder follows it.
func TestIndexLoadChecksUIDListContent(t *testing.T) {
	base := t.TempDir()
	s := newStoreAt(t, base)
	m := openUser(t, s)
	deliver(t, s, m, "INBOX", msg("a", 100))
	in := folder(t, m, "INBOX")
	before := snapshot(t, in)
	p := filepath.Join(in.st.dir, uidlistName)
	s.Close()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf(" V%d ", before.UIDValidity)
	uv := before.UIDValidity ^ 1
	if len(fmt.Sprint(uv)) != len(fmt.Sprint(before.UIDValidity)) || !strings.Contains(string(data), old) {
		t.Fatalf("header %q", data)
	}
	// Rewritten in place: same inode, size and mtime.
	fh, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte(strings.Replace(string(data), old, fmt.Sprintf(" V%d ", uv), 1)), 0); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, folder(t, openUser(t, newStoreAt(t, base)), "INBOX"))
	if after.UIDValidity != uv {
		t.Fatalf("UIDVALIDITY %d after the rewrite to %d (was %d)", after.UIDValidity, uv, before.UIDValidity)
	}
}

// A store to several messages that finds one renamed by someone else
// rescans, which gives that outside change a modseq; the store's own
// change to the message must come after it, never below it.
func TestModSeqStoreAfterOutsideRename(t *testing.T) {
	ctx := context.Background()
	in, _ := twoMessages(t)
	ch, err := in.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := in.st.dir
	name := fileOf(t, in, 2)
	if err := os.Rename(filepath.Join(dir, "cur", name), filepath.Join(dir, "cur", name+"F")); err != nil {
		t.Fatal(err)
	}
	out, err := in.StoreFlags(ctx, []uint32{1, 2}, FlagsAdd, []string{FlagSeen})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || !out[1].HasFlag(FlagFlagged) || !out[1].HasFlag(FlagSeen) {
		t.Fatalf("store returned %+v", out)
	}
	// The outside change is told to watchers with its modseq, before
	// the store's.
	var outside uint64
	for len(ch) > 0 {
		if ev := <-ch; ev.Kind == EventFlags && slices.Equal(ev.UIDs, []uint32{2}) && outside == 0 {
			outside = ev.ModSeq
		}
	}
	if outside == 0 {
		t.Fatal("the outside change was not told to the watcher")
	}
	h := highest(t, in)
	for _, m := range out {
		if m.ModSeq != h || m.ModSeq <= outside {
			t.Errorf("UID %d at modseq %d after the store; the outside change was at %d, highest is %d", m.UID, m.ModSeq, outside, h)
		}
	}
	if got, _ := in.ChangedSince(ctx, outside); !slices.Equal(uidsOf(got), []uint32{1, 2}) {
		t.Errorf("changed since the outside change (%d): %v, want [1 2]", outside, uidsOf(got))
	}
}

// A writer that has not noticed an expunge yet (its listing's stamps
// hid it: a change in the same instant as its own) writes the index
// with the expunged message still in it; the process that expunged it
// does not take it back from there.
func TestMergeDoesNotBringBackExpunged(t *testing.T) {
	ctx := context.Background()
	a, b := twoWriters(t)
	if gone, err := a.Expunge(ctx, []uint32{1}); err != nil || len(gone) != 1 {
		t.Fatalf("expunge: %v %v", gone, err)
	}
	b.st.mu.Lock()
	b.st.adoptOwnChange() // b's own change in the same instant hides a's
	b.st.scannedAt = time.Now().UnixNano()
	b.st.mu.Unlock()
	if _, err := b.Expunge(ctx, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	if got := uidsOf(snapshot(t, a).Messages); !slices.Equal(got, []uint32{3}) {
		t.Fatalf("the expunging process sees %v, want [3]", got)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := uidsOf(snapshot(t, b).Messages); !slices.Equal(got, []uint32{3}) {
		t.Fatalf("the other process sees %v after a rescan, want [3]", got)
	}
}

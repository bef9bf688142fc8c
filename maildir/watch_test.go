package maildir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// labelled counts the goroutines carrying the pprof label test=name,
// which every goroutine started (directly or not) inside
// pprof.Do(..., pprof.Labels("test", name), ...) inherits, and returns
// their stacks.
func labelled(t *testing.T, name string) (n int, stacks string) {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`# labels: {"test":%q}`, name)
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if !strings.Contains(g, want) {
			continue
		}
		// A group starts "<count> @ <pcs>" (the first after the header).
		for _, line := range strings.Split(g, "\n") {
			var c int
			if _, err := fmt.Sscanf(line, "%d @", &c); err == nil {
				n += c
				break
			}
		}
		stacks += g + "\n\n"
	}
	return n, stacks
}

// noneLeft fails unless the goroutines labelled name are all gone. A
// goroutine signals that it is done (closes a channel) just before it
// returns, so this looks again for a while, as leak checkers do; a
// goroutine still blocked is a leak and never goes.
func noneLeft(t *testing.T, name, when string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, stacks := labelled(t, name)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left %s:\n%s", n, when, stacks)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// TestCloseEndsWatches: Store.Close ends the watches of Maildirs still
// open. Their channels are closed when Close returns, no goroutine the
// watches started is left, and later changes send nothing (a send on a
// closed channel would panic) while a new Watch is refused.
func TestCloseEndsWatches(t *testing.T) {
	ctx := context.Background() // never cancelled: only Close ends the watches
	s, err := New(t.TempDir(), &Options{PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var m *Maildir
	var in, lists *Folder
	var chans []<-chan Event
	pprof.Do(ctx, pprof.Labels("test", t.Name()), func(ctx context.Context) {
		m = openUser(t, s)
		if err := m.CreateFolder(ctx, "Lists"); err != nil {
			t.Fatal(err)
		}
		in, lists = folder(t, m, "INBOX"), folder(t, m, "Lists")
		for _, f := range []*Folder{in, in, lists} {
			ch, err := f.Watch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			chans = append(chans, ch)
		}
		deliver(t, s, m, "INBOX", msg("a", 50))
		deliver(t, s, m, "Lists", msg("b", 50))
	})
	for i, ch := range chans {
		if ev := waitEvent(t, ch, 5*time.Second); ev.Kind != EventNew {
			t.Fatalf("watch %d: %+v", i, ev)
		}
	}
	if n, _ := labelled(t, t.Name()); n < 2 {
		t.Fatalf("%d goroutines while watching two folders: the count does not see them", n)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i, ch := range chans {
	drain:
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					break drain
				}
			default:
				t.Fatalf("watch %d: channel still open after Close", i)
			}
		}
	}
	noneLeft(t, t.Name(), "after Close")

	// The Maildir still works; its changes go to no one.
	deliver(t, s, m, "INBOX", msg("c", 50))
	if _, err := in.StoreFlags(ctx, []uint32{1}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Expunge(ctx, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if st := snapshot(t, in); len(st.Messages) != 1 {
		t.Fatalf("%d messages", len(st.Messages))
	}
	for _, f := range []*Folder{in, lists, folder(t, m, "Sent")} {
		if _, err := f.Watch(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Watch of %s after Close: %v", f.Name(), err)
		}
	}
	noneLeft(t, t.Name(), "after use past Close")
}

// TestWatchEndsWithContext: a watch whose context ends has its channel
// closed and, when it was the folder's last, its poller stopped.
func TestWatchEndsWithContext(t *testing.T) {
	s := newTestStore(t, &Options{PollInterval: 5 * time.Millisecond})
	m := openUser(t, s)
	in := folder(t, m, "INBOX")
	ctx, cancel := context.WithCancel(context.Background())
	var ch <-chan Event
	pprof.Do(context.Background(), pprof.Labels("test", t.Name()), func(context.Context) {
		var err error
		if ch, err = in.Watch(ctx); err != nil {
			t.Fatal(err)
		}
	})
	cancel()
	for range ch {
	}
	noneLeft(t, t.Name(), "after the watch ended")
}

// TestWatchOrder hammers a folder with concurrent deliveries, appends,
// flag changes and expunges (some through a second Store, as another
// process would) and checks what each subscriber saw: Seq without gaps,
// the same sequence for all, every UID added before it is flagged or
// expunged, never touched after its expunge, and the UIDs left equal to
// the final state.
func TestWatchOrder(t *testing.T) {
	old := watchBuffer
	watchBuffer = 1 << 16 // no drops: every subscriber must see everything
	t.Cleanup(func() { watchBuffer = old })
	ctx := context.Background()
	s := newTestStore(t, &Options{PollInterval: 2 * time.Millisecond})
	m := openUser(t, s)
	in := folder(t, m, "INBOX")
	in2 := folder(t, m, "INBOX") // another handle on the same folder
	other := newStoreAt(t, s.base)

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	const subs = 3
	seen := make([][]Event, subs)
	var collectors sync.WaitGroup
	for i := range subs {
		f := in
		if i == 1 {
			f = in2
		}
		ch, err := f.Watch(wctx)
		if err != nil {
			t.Fatal(err)
		}
		collectors.Go(func() {
			for ev := range ch {
				seen[i] = append(seen[i], ev)
			}
		})
	}

	var wg, writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			st := s
			if w == 3 {
				st = other // deliveries this Store hears of by its own scans
			}
			for i := range 25 {
				if _, err := st.Deliver(ctx, m.Path(), "INBOX", strings.NewReader(msg(fmt.Sprint(w, i), 40)), nil); err != nil {
					t.Error(err)
				}
			}
		})
	}
	writers.Go(func() {
		for range 15 {
			if _, err := in2.Append(ctx, strings.NewReader(msg("ap", 30)), []string{FlagDraft}, time.Time{}); err != nil {
				t.Error(err)
			}
		}
	})
	pick := func(r *rand.Rand, f *Folder, n int) []uint32 {
		snap, err := f.Snapshot(ctx)
		if err != nil {
			t.Error(err)
			return nil
		}
		var uids []uint32
		for range min(n, len(snap.Messages)) {
			uids = append(uids, snap.Messages[r.IntN(len(snap.Messages))].UID)
		}
		return uids
	}
	done := make(chan struct{})
	busy := func() bool {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	var flagged, expunged atomic.Int64
	for w := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(1, uint64(w)))
			ops := []FlagOp{FlagsAdd, FlagsRemove, FlagsSet}
			for busy() {
				f := []*Folder{in, in2}[w]
				got, err := f.StoreFlags(ctx, pick(r, f, 3), ops[r.IntN(3)], []string{FlagSeen, "k" + fmt.Sprint(r.IntN(3))})
				if err != nil {
					t.Error(err)
				}
				flagged.Add(int64(len(got)))
			}
		})
	}
	wg.Go(func() {
		r := rand.New(rand.NewPCG(2, 0))
		for busy() {
			gone, err := in.Expunge(ctx, pick(r, in, 1))
			if err != nil {
				t.Error(err)
			}
			expunged.Add(int64(len(gone)))
		}
	})
	writers.Wait()
	close(done)
	wg.Wait()
	if flagged.Load() == 0 || expunged.Load() == 0 {
		t.Fatalf("%d flag changes, %d expunges: the hammering missed its point", flagged.Load(), expunged.Load())
	}
	if err := in.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	final := snapshot(t, in)
	stop()
	collectors.Wait()

	for i := range subs {
		evs := seen[i]
		if i > 0 && !slices.EqualFunc(evs, seen[0], func(a, b Event) bool {
			return a.Kind == b.Kind && a.Seq == b.Seq && slices.Equal(a.UIDs, b.UIDs)
		}) {
			t.Errorf("subscriber %d saw another sequence than subscriber 0 (%d and %d events)", i, len(evs), len(seen[0]))
		}
		live := map[uint32]bool{}
		dead := map[uint32]bool{}
		for j, ev := range evs {
			if j > 0 && ev.Seq != evs[j-1].Seq+1 {
				t.Fatalf("subscriber %d: Seq %d after %d", i, ev.Seq, evs[j-1].Seq)
			}
			for _, u := range ev.UIDs {
				switch ev.Kind {
				case EventNew:
					if live[u] || dead[u] {
						t.Fatalf("subscriber %d, event %d (Seq %d): UID %d added twice", i, j, ev.Seq, u)
					}
					live[u] = true
				case EventFlags:
					if !live[u] {
						t.Fatalf("subscriber %d, event %d (Seq %d): flags of UID %d before its add or after its expunge", i, j, ev.Seq, u)
					}
				case EventExpunged:
					if !live[u] {
						t.Fatalf("subscriber %d, event %d (Seq %d): expunge of UID %d before its add or twice", i, j, ev.Seq, u)
					}
					delete(live, u)
					dead[u] = true
				default:
					t.Fatalf("subscriber %d: unexpected %+v", i, ev)
				}
			}
		}
		var got []uint32
		for u := range live {
			got = append(got, u)
		}
		slices.Sort(got)
		var want []uint32
		for _, msg := range final.Messages {
			want = append(want, msg.UID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("subscriber %d ends with UIDs %v, the folder holds %v", i, got, want)
		}
		if i == 0 {
			t.Logf("%d events, %d messages left, %d expunged, %d flag changes", len(evs), len(want), len(dead), flagged.Load())
		}
	}
}

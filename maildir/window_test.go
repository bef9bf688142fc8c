package maildir

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testClock is a clock tests move by hand (unix nanoseconds).
type testClock struct{ ns atomic.Int64 }

func (c *testClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *testClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *testClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// TestWindowForStamps: a stamp with a sub-second part gets the fine
// window, a whole-second one the one-second window, and the window runs
// from the later of the stamps and the state's own last change.
func TestWindowForStamps(t *testing.T) {
	whole := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	fine := whole + 123456789
	for _, c := range []struct {
		name           string
		newM, curM, at int64
		want           int64
	}{
		{"whole seconds", whole, whole - int64(time.Hour), 0, whole + int64(dirtyWindow)},
		{"sub-second", fine - int64(time.Hour), fine, 0, fine + int64(fineWindow)},
		{"one directory in whole seconds", whole, fine, 0, fine + int64(dirtyWindow)},
		{"own change seen later", fine, fine, fine + int64(time.Minute), fine + int64(time.Minute) + int64(fineWindow)},
	} {
		f := &folderState{newStamp: fileStamp{mtime: c.newM}, curStamp: fileStamp{mtime: c.curM}, ownAt: c.at}
		if got := f.settledAt(); got != c.want {
			t.Errorf("%s: settled at %v, want %v", c.name, time.Duration(got-c.want), time.Duration(0))
		}
	}
}

// hiddenChangeSetup makes a folder of three messages, changes the flags
// of message 1 through the Store and then, as another writer in the same
// timestamp tick, adds \Seen to message 2 by a rename whose directory
// mtime it puts back (os.Chtimes): the stamps show nothing new. It
// returns the folder and the watch channel.
func hiddenChangeSetup(t *testing.T, clock *testClock) (*Folder, <-chan Event) {
	t.Helper()
	ctx := context.Background()
	clock.set(time.Now())
	s := newTestStore(t, &Options{now: clock.now, NoWatcher: true, PollInterval: time.Hour})
	m := openUser(t, s)
	in := folder(t, m, "INBOX")
	for i := range 3 {
		if _, err := in.Append(ctx, strings.NewReader(msg(string(rune('a'+i)), 100)), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	clock.add(10 * time.Second)
	if err := in.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	st := in.st
	st.mu.Lock()
	settled := !st.unsettled()
	st.mu.Unlock()
	if !settled {
		t.Fatal("stamps not settled ten seconds on")
	}
	ch, err := in.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.StoreFlags(ctx, []uint32{1}, FlagsAdd, []string{FlagFlagged}); err != nil {
		t.Fatal(err)
	}
	<-ch // the STORE's own event
	cur := filepath.Join(st.dir, "cur")
	st.mu.Lock()
	stamp, from := st.curStamp, filepath.Join(st.dir, st.ents[2].relPath())
	st.mu.Unlock()
	if err := os.Rename(from, from+"S"); err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(0, stamp.mtime)
	if err := os.Chtimes(cur, mt, mt); err != nil {
		t.Fatal(err)
	}
	if now, _ := statStamp(cur); now != stamp {
		t.Skipf("this file system changes more than cur/'s mtime on a rename (%+v, was %+v)", now, stamp)
	}
	return in, ch
}

func seenUIDs(t *testing.T, f *Folder) []uint32 {
	t.Helper()
	var out []uint32
	for _, m := range snapshot(t, f).Messages {
		if m.HasFlag(FlagSeen) {
			out = append(out, m.UID)
		}
	}
	return out
}

// TestHiddenChangeSeenByBackgroundCheck: the other writer's change is not
// seen inside the dirty window (nothing shows it), and the check the
// folder runs once the window has passed lists the folder, finds it and
// tells watchers, as a change with its own stamp would be.
func TestHiddenChangeSeenByBackgroundCheck(t *testing.T) {
	var clock testClock
	in, ch := hiddenChangeSetup(t, &clock)
	st := in.st
	if got := seenUIDs(t, in); len(got) != 0 {
		t.Fatalf("seen %v inside the window: the test did not hide the change", got)
	}
	clock.add(fineWindow + time.Millisecond) // past the window, the check not late yet
	st.mu.Lock()
	scans := st.scans
	st.mu.Unlock()
	if got := seenUIDs(t, in); len(got) != 0 {
		t.Fatalf("a sync with the check on its way listed the folder itself: seen %v", got)
	}
	st.verifyNow() // what the timer runs (it may have run already)
	if got := seenUIDs(t, in); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("seen %v after the check, want [2]", got)
	}
	select {
	case ev := <-ch:
		if ev.Kind != EventFlags || !slices.Equal(ev.UIDs, []uint32{2}) {
			t.Fatalf("event %+v", ev)
		}
	default:
		t.Fatal("no event for the hidden change")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.scans != scans+1 || st.unsettled() {
		t.Fatalf("%d scans, unsettled %v", st.scans-scans, st.unsettled())
	}
}

// TestHiddenChangeSeenBySyncWhenCheckLate: a sync after the window and
// its grace lists the folder itself when no check has run.
func TestHiddenChangeSeenBySyncWhenCheckLate(t *testing.T) {
	var clock testClock
	in, _ := hiddenChangeSetup(t, &clock)
	clock.add(fineWindow + verifyGrace)
	if got := seenUIDs(t, in); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("seen %v, want [2]", got)
	}
}

// TestWindowCheckWithoutChange: the check after the window, when no one
// else changed the folder, costs a listing and no scan.
func TestWindowCheckWithoutChange(t *testing.T) {
	var clock testClock
	clock.set(time.Now())
	ctx := context.Background()
	s := newTestStore(t, &Options{now: clock.now, NoWatcher: true})
	m := openUser(t, s)
	in := folder(t, m, "INBOX")
	for i := range 3 {
		if _, err := in.Append(ctx, strings.NewReader(msg(string(rune('a'+i)), 100)), []string{FlagSeen}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.StoreFlags(ctx, []uint32{2}, FlagsRemove, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Expunge(ctx, []uint32{3}); err != nil {
		t.Fatal(err)
	}
	st := in.st
	st.mu.Lock()
	scans := st.scans
	st.mu.Unlock()
	clock.add(2 * time.Second)
	st.verifyNow()
	st.mu.Lock()
	if st.scans != scans || st.unsettled() {
		t.Fatalf("%d scans after the check, unsettled %v", st.scans-scans, st.unsettled())
	}
	st.mu.Unlock()
	if got := seenUIDs(t, in); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("seen %v", got)
	}
}

// TestReopenAfterChangeNoScan: a folder changed here (a flag change, in
// the log, not in the index's stamps) and opened again once every handle
// was closed is listed once, with no scan: nothing new, nothing written.
func TestReopenAfterChangeNoScan(t *testing.T) {
	var clock testClock
	clock.set(time.Now())
	ctx := context.Background()
	s := newTestStore(t, &Options{now: clock.now, NoWatcher: true})
	p, err := s.UserPath("example.org", "alice")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	in := folder(t, m, "INBOX")
	for i := range 3 {
		if _, err := in.Append(ctx, strings.NewReader(msg(string(rune('a'+i)), 100)), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	clock.add(10 * time.Second)
	if err := in.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m, err = s.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	in = folder(t, m, "INBOX")
	if _, err := in.StoreFlags(ctx, []uint32{2}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	clock.add(2 * time.Second)
	in.st.verifyNow()
	m.Close()
	clock.add(time.Minute)
	m, err = s.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	in = folder(t, m, "INBOX")
	if got := seenUIDs(t, in); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("seen %v", got)
	}
	in.st.mu.Lock()
	scans, from := in.st.scans, filepath.Join(in.st.dir, in.st.ents[3].relPath())
	in.st.mu.Unlock()
	if scans != 0 {
		t.Fatalf("%d scans on opening again", scans)
	}
	// A rename by someone else while the Maildir is closed is found.
	m.Close()
	if err := os.Rename(from, from+"S"); err != nil {
		t.Fatal(err)
	}
	m, err = s.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := seenUIDs(t, folder(t, m, "INBOX")); !slices.Equal(got, []uint32{2, 3}) {
		t.Fatalf("seen %v after an outside rename", got)
	}
}

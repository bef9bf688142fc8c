package maildir

import (
	"context"
	"runtime"
	"sync"
	"testing"
)

// TestGroupCommitLimit: at most maxInFlight fsyncs of one directory run
// at once; a caller finding every slot taken joins the pending batch, and
// every caller returns once an fsync has covered it.
func TestGroupCommitLimit(t *testing.T) {
	var mu sync.Mutex
	running, most := 0, 0
	entered := make(chan struct{}, 100)
	release := make(chan struct{})
	dirFsync = func(string) error {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		entered <- struct{}{}
		<-release
		mu.Lock()
		running--
		mu.Unlock()
		return nil
	}
	t.Cleanup(func() { dirFsync = fsyncDir })

	var s syncers
	ctx := context.Background()
	const late = 6
	errs := make(chan error, maxInFlight+late)
	var wg sync.WaitGroup
	for range maxInFlight {
		wg.Go(func() { errs <- s.syncDir(ctx, "dir") })
	}
	for range maxInFlight {
		<-entered
	}
	d := s.get("dir")
	defer s.put(d)
	for range late {
		wg.Go(func() { errs <- s.syncDir(ctx, "dir") })
	}
	// A late caller either starts a batch (right) or an fsync (wrong).
	for {
		d.mu.Lock()
		pending := d.pending != nil
		d.mu.Unlock()
		if pending {
			break
		}
		select {
		case <-entered:
			t.Fatalf("an fsync started while %d were in flight", maxInFlight)
		default:
		}
		runtime.Gosched()
	}
	// Every late caller has taken the syncer before the slots free.
	for {
		s.mu.Lock()
		refs := d.refs
		s.mu.Unlock()
		if refs == maxInFlight+late+1 {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if most != maxInFlight {
		t.Fatalf("%d fsyncs in flight at most, want %d", most, maxInFlight)
	}
	if n := s.fsyncs.Load(); n <= maxInFlight || n > maxInFlight+late {
		t.Fatalf("%d fsyncs for %d callers, %d of them late", n, maxInFlight+late, late)
	}
}

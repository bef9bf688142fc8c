package maildir

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/mailagent/mailagent/internal/safeio"
)

// maxInFlight is how many fsyncs of one directory may run at once. A
// writer finding every slot taken joins the batch that starts when one
// frees, so under load one fsync covers many links, and a lone writer
// never waits for anyone. Four measured best between 8 and 32 concurrent
// deliverers: with two, 8 deliverers waited for batches longer than
// their own fsyncs would have taken (docs/BENCHMARKS.md).
const maxInFlight = 4

// dirSyncer shares directory fsyncs among concurrent writers (group
// commit). Every caller is covered by an fsync that started after it
// called, hence after its rename: either its own, started at once when a
// slot is free, or the pending batch it joins, which starts later.
type dirSyncer struct {
	path  string
	refs  int // guarded by syncers.mu
	count *atomic.Int64
	limit int // fsyncs in flight at most

	mu       sync.Mutex
	inFlight int
	pending  *syncRound // the batch waiting for a slot, nil if none
}

type syncRound struct {
	done chan struct{}
	err  error
}

// sync returns once an fsync of the directory that started after the call
// has completed.
func (d *dirSyncer) sync(ctx context.Context) error {
	d.mu.Lock()
	if d.inFlight < d.limit && d.pending == nil {
		d.inFlight++
		d.mu.Unlock()
		r := &syncRound{done: make(chan struct{})}
		d.run(r)
		return r.err
	}
	r := d.pending
	if r == nil {
		r = &syncRound{done: make(chan struct{})}
		d.pending = r
	}
	d.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		// The batch still runs for the others; this caller gives up.
		return ctx.Err()
	}
}

// run performs round r, then hands its slot to the pending batch, if any.
func (d *dirSyncer) run(r *syncRound) {
	r.err = dirFsync(d.path)
	d.count.Add(1)
	close(r.done)
	d.mu.Lock()
	n := d.pending
	if n != nil {
		d.pending = nil
	} else {
		d.inFlight--
	}
	d.mu.Unlock()
	if n != nil {
		go d.run(n)
	}
}

// fsyncDir is safeio.SyncDir: every error reported, the close's too.
func fsyncDir(path string) error { return safeio.SyncDir(path) }

// dirFsync is fsyncDir, replaceable by tests.
var dirFsync = fsyncDir

// syncers hands out one dirSyncer per directory.
type syncers struct {
	mu sync.Mutex
	m  map[string]*dirSyncer
	// fsyncs counts directory fsyncs issued, to show the batching.
	fsyncs atomic.Int64
	// limit, when not 0, replaces maxInFlight (benchmarks compare).
	limit int
}

// get returns the syncer of path; release it with put.
func (s *syncers) get(path string) *dirSyncer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]*dirSyncer)
	}
	d := s.m[path]
	if d == nil {
		d = &dirSyncer{path: path, count: &s.fsyncs, limit: maxInFlight}
		if s.limit > 0 {
			d.limit = s.limit
		}
		s.m[path] = d
	}
	d.refs++
	return d
}

// put forgets the syncer when no writer uses it; a round still in flight
// completes on its own.
func (s *syncers) put(d *dirSyncer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.refs--; d.refs == 0 {
		delete(s.m, d.path)
	}
}

// syncDir fsyncs path, shared with concurrent callers.
func (s *syncers) syncDir(ctx context.Context, path string) error {
	d := s.get(path)
	defer s.put(d)
	return d.sync(ctx)
}

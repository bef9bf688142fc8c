package maildir

import (
	"context"
	"os"
	"sync"
)

// dirSyncer shares directory fsyncs among concurrent writers (group
// commit): a caller whose rename completed before an fsync of the
// directory started is covered by that fsync. A caller that arrives while
// one is running waits for it and then joins the next, which starts as
// soon as the running one ends and covers everyone who waited.
type dirSyncer struct {
	path string
	refs int // guarded by syncers.mu

	mu      sync.Mutex
	running *syncRound // the fsync in flight, nil if none
	next    *syncRound // the round waiting to start after it
}

type syncRound struct {
	done chan struct{}
	err  error
}

// sync returns once an fsync of the directory that started after the call
// has completed.
func (d *dirSyncer) sync(ctx context.Context) error {
	d.mu.Lock()
	if d.running == nil {
		r := &syncRound{done: make(chan struct{})}
		d.running = r
		d.mu.Unlock()
		d.run(r)
		return r.err
	}
	r := d.next
	if r == nil {
		r = &syncRound{done: make(chan struct{})}
		d.next = r
	}
	d.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		// The round still runs for the others; this caller gives up.
		return ctx.Err()
	}
}

// run performs round r and then starts the queued round, if any, so there
// is never more than one fsync per directory at once and the caller of r
// does not wait for rounds it does not need.
func (d *dirSyncer) run(r *syncRound) {
	r.err = fsyncDir(d.path)
	close(r.done)
	d.mu.Lock()
	n := d.next
	d.next = nil
	d.running = n
	d.mu.Unlock()
	if n != nil {
		go d.run(n)
	}
}

func fsyncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncers hands out one dirSyncer per directory.
type syncers struct {
	mu sync.Mutex
	m  map[string]*dirSyncer
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
		d = &dirSyncer{path: path}
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

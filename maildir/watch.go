package maildir

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchBuffer is how many events a watcher may fall behind before it gets
// an EventReset instead.
var watchBuffer = 256

type watcher struct {
	ch     chan Event
	missed bool        // events were dropped; owes an EventReset
	stop   func() bool // stops the removal on the watch's context
}

// poller watches a folder for changes by other processes while it has
// watchers: fsnotify on new/ and cur/ where available and not turned off
// (Options.NoWatcher), and a periodic cheap check (four stats, see sync)
// in any case, which is what sees other nodes' writes on NFS.
type poller struct {
	kick   chan struct{}
	done   chan struct{}
	ctx    context.Context // cancelled to stop it, ending a refresh early
	cancel context.CancelFunc
}

// notify numbers events in the folder's sequence and hands them to every
// watcher without ever blocking the writer. Callers hold f.mu, under
// which every change is applied, so watchers see the changes in the order
// they were made.
func (f *folderState) notify(evs []Event) {
	if len(evs) == 0 {
		return
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	for i := range evs {
		f.seq++
		evs[i].Seq = f.seq
	}
	for w := range f.watchers {
		for _, ev := range evs {
			if w.missed {
				select {
				case w.ch <- Event{Kind: EventReset, Seq: ev.Seq}:
					w.missed = false
				default:
				}
				break
			}
			select {
			case w.ch <- ev:
			default:
				w.missed = true
			}
		}
	}
}

// flushMissed gives watchers that dropped events their EventReset once
// they have room again.
func (f *folderState) flushMissed() {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	for w := range f.watchers {
		if w.missed {
			select {
			case w.ch <- Event{Kind: EventReset, Seq: f.seq}:
				w.missed = false
			default:
			}
		}
	}
}

// kick asks the poller, if any, to check the folder now.
func (f *folderState) kick() {
	f.wmu.Lock()
	p := f.poll
	f.wmu.Unlock()
	if p != nil {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// refresh syncs the folder and notifies watchers of what changed.
func (f *folderState) refresh(ctx context.Context) {
	f.mu.Lock()
	evs, err := f.sync(ctx, false)
	f.notify(evs)
	f.mu.Unlock()
	if err != nil {
		f.s.log.Debug("maildir: background sync", "dir", f.dir, "err", err)
	}
	f.flushMissed()
}

// addWatcher registers a watch that lasts until ctx is done, the folder
// goes or the Store is closed (ErrClosed if it already is).
func (f *folderState) addWatcher(ctx context.Context) (*watcher, error) {
	w := &watcher{ch: make(chan Event, watchBuffer)}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.watchEnd != nil {
		return nil, f.watchEnd
	}
	f.s.mu.Lock()
	closed := f.s.closed
	f.s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if f.watchers == nil {
		f.watchers = make(map[*watcher]struct{})
	}
	f.watchers[w] = struct{}{}
	if f.poll == nil {
		p := &poller{kick: make(chan struct{}, 1), done: make(chan struct{})}
		p.ctx, p.cancel = context.WithCancel(context.Background())
		f.poll = p
		go f.runPoller(p)
	}
	// No goroutine waits for ctx: the removal runs when it is done, and
	// is called off when the watch ends otherwise.
	w.stop = context.AfterFunc(ctx, func() { f.removeWatcher(w) })
	return w, nil
}

func (f *folderState) removeWatcher(w *watcher) {
	f.wmu.Lock()
	if _, ok := f.watchers[w]; !ok {
		f.wmu.Unlock()
		return
	}
	delete(f.watchers, w)
	var p *poller
	if len(f.watchers) == 0 {
		p, f.poll = f.poll, nil
	}
	f.wmu.Unlock()
	if p != nil {
		p.end()
	}
	// Closed last (no sender is left: w is out of the set), so that a
	// watcher seeing it closed knows the poller it kept running is gone.
	close(w.ch)
}

// end stops the poller and waits until it has.
func (p *poller) end() {
	p.cancel()
	<-p.done
}

// stopWatching ends every watch of the folder for good (closing their
// channels) and waits for its poller to stop: no event and no goroutine
// of the folder's watches outlives it. Later watches get err.
func (f *folderState) stopWatching(err error) {
	f.wmu.Lock()
	f.watchEnd = err
	for w := range f.watchers {
		w.stop()
		close(w.ch)
	}
	f.watchers = nil
	p := f.poll
	f.poll = nil
	f.wmu.Unlock()
	if p != nil {
		p.end()
	}
}

func (f *folderState) runPoller(p *poller) {
	defer close(p.done)
	ctx := p.ctx
	var events <-chan fsnotify.Event
	var errs <-chan error
	if !f.s.opts.NoWatcher {
		if fw, err := fsnotify.NewWatcher(); err == nil {
			defer fw.Close()
			ok := fw.Add(filepath.Join(f.dir, "new")) == nil
			ok = fw.Add(filepath.Join(f.dir, "cur")) == nil && ok
			if ok {
				events, errs = fw.Events, fw.Errors
			}
		}
	}
	t := time.NewTicker(f.s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			drain(events)
		case _, ok := <-errs:
			if !ok {
				errs = nil
			}
			continue
		}
		f.refresh(ctx)
	}
}

// drain takes the events already queued so a burst costs one sync.
func drain(ch <-chan fsnotify.Event) {
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

package maildir

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchBuffer is how many events a watcher may fall behind before it gets
// an EventReset instead.
const watchBuffer = 256

type watcher struct {
	ch     chan Event
	missed bool // events were dropped; owes an EventReset
}

// poller watches a folder for changes by other processes while it has
// watchers: fsnotify on new/ and cur/ where available, and a periodic
// cheap check (two directory stats) in any case.
type poller struct {
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// notify hands events to every watcher without ever blocking the writer.
func (f *folderState) notify(evs []Event) {
	if len(evs) == 0 {
		return
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	for w := range f.watchers {
		for _, ev := range evs {
			if w.missed {
				select {
				case w.ch <- Event{Kind: EventReset}:
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
			case w.ch <- Event{Kind: EventReset}:
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
	f.mu.Unlock()
	if err != nil {
		f.s.log.Debug("maildir: background sync", "dir", f.dir, "err", err)
	}
	f.notify(evs)
	f.flushMissed()
}

func (f *folderState) addWatcher(ctx context.Context) *watcher {
	w := &watcher{ch: make(chan Event, watchBuffer)}
	f.wmu.Lock()
	if f.watchers == nil {
		f.watchers = make(map[*watcher]struct{})
	}
	f.watchers[w] = struct{}{}
	if f.poll == nil {
		p := &poller{kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
		f.poll = p
		go f.runPoller(p)
	}
	f.wmu.Unlock()
	go func() {
		<-ctx.Done()
		f.removeWatcher(w)
	}()
	return w
}

func (f *folderState) removeWatcher(w *watcher) {
	f.wmu.Lock()
	if _, ok := f.watchers[w]; !ok {
		f.wmu.Unlock()
		return
	}
	delete(f.watchers, w)
	close(w.ch)
	var p *poller
	if len(f.watchers) == 0 {
		p, f.poll = f.poll, nil
	}
	f.wmu.Unlock()
	if p != nil {
		close(p.stop)
		<-p.done
	}
}

// stopWatching ends every watch of the folder (closing their channels).
func (f *folderState) stopWatching() {
	f.wmu.Lock()
	for w := range f.watchers {
		close(w.ch)
	}
	f.watchers = nil
	p := f.poll
	f.poll = nil
	f.wmu.Unlock()
	if p != nil {
		close(p.stop)
		<-p.done
	}
}

func (f *folderState) runPoller(p *poller) {
	defer close(p.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-p.stop
		cancel()
	}()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if fw, err := fsnotify.NewWatcher(); err == nil {
		defer fw.Close()
		ok := fw.Add(filepath.Join(f.dir, "new")) == nil
		ok = fw.Add(filepath.Join(f.dir, "cur")) == nil && ok
		if ok {
			events, errs = fw.Events, fw.Errors
		}
	}
	t := time.NewTicker(f.s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
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

package maildir

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// folderWatch is one WatchFolders: a goroutine that signals ch when the
// Maildir's folder directories or its subscriptions file change.
type folderWatch struct {
	ch     chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// WatchFolders returns a channel that receives a value whenever the
// Maildir's list of folders or its subscriptions may have changed, by
// this process or any other: a folder made with mkdir, created, renamed
// or deleted by Dovecot, or by another node sharing the Maildir tree.
// It uses the machinery of Folder.Watch: fsnotify on the Maildir's
// directory where available and not turned off (Options.NoWatcher), and
// in any case a check every Options.PollInterval that reads the
// directory's names (a folder found ready is not looked at again) and
// stats the subscriptions file, which is what sees other nodes' changes
// on NFS. A value is sent
// only when the folder directories' names, whether each is ready
// (FolderReady: a folder being created is told again once its cur/,
// new/ and tmp/ are there, by the poll) or the subscriptions file
// differ from the last check; values coalesce (the channel holds one),
// and the caller compares Folders and Subscriptions with what it saw.
// The channel is closed when ctx is done or the Store is closed.
func (m *Maildir) WatchFolders(ctx context.Context) (<-chan struct{}, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	w := &folderWatch{ch: make(chan struct{}, 1), done: make(chan struct{})}
	ctx, w.cancel = context.WithCancel(ctx)
	u := m.u
	u.mu.Lock()
	if u.folderWatches == nil {
		u.folderWatches = map[*folderWatch]struct{}{}
	}
	u.folderWatches[w] = struct{}{}
	u.mu.Unlock()
	// Checked once registered: a Close after this stops the watch.
	m.store.mu.Lock()
	closed := m.store.closed
	m.store.mu.Unlock()
	if closed {
		u.mu.Lock()
		delete(u.folderWatches, w)
		u.mu.Unlock()
		w.cancel()
		close(w.done) // a Close already waiting for it returns
		return nil, ErrClosed
	}
	// The state the first change is measured against is taken before
	// returning: a change made once WatchFolders has returned is seen.
	ready := map[string]bool{}
	last := m.folderSignature(ready)
	go m.runFolderWatch(ctx, w, last, ready)
	return w.ch, nil
}

// folderSignature is what a change to the folder list or subscriptions
// changes: the folder directories' names, sorted, each marked ready or
// not (FolderReady; ready lists those found ready before, which are not
// looked at again), and the subscriptions file's identity, size and
// modification time.
func (m *Maildir) folderSignature(ready map[string]bool) string {
	var b strings.Builder
	if d, err := os.Open(m.path); err == nil {
		names, _ := d.Readdirnames(-1)
		d.Close()
		names = slices.DeleteFunc(names, func(n string) bool { _, ok := folderFromDirName(n); return !ok })
		slices.Sort(names)
		present := make(map[string]bool, len(names))
		for _, n := range names {
			present[n] = true
			if !ready[n] && dirsReady(filepath.Join(m.path, n)) {
				ready[n] = true
			}
			b.WriteString(n)
			if ready[n] {
				b.WriteByte('+')
			}
			b.WriteByte('/')
		}
		maps.DeleteFunc(ready, func(n string, _ bool) bool { return !present[n] })
	}
	if st, err := os.Stat(filepath.Join(m.path, subscriptionsName)); err == nil {
		fmt.Fprintf(&b, "%d %d %d", inodeOf(st), st.Size(), st.ModTime().UnixNano())
	}
	return b.String()
}

// FolderReady reports whether folder name has its cur/, new/ and tmp/
// directories. One another program is still creating is better left
// alone: opening it creates what it lacks, and its creator (Dovecot
// for one) then finds the folder existing and fails.
func (m *Maildir) FolderReady(name string) bool {
	if name == "INBOX" {
		return true
	}
	return dirsReady(folderDir(m.path, name))
}

func dirsReady(dir string) bool {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
			return false
		}
	}
	return true
}

func (m *Maildir) runFolderWatch(ctx context.Context, w *folderWatch, last string, ready map[string]bool) {
	defer close(w.done)
	defer close(w.ch)
	defer func() {
		m.u.mu.Lock()
		delete(m.u.folderWatches, w)
		m.u.mu.Unlock()
	}()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if !m.store.opts.NoWatcher {
		if fw, err := fsnotify.NewWatcher(); err == nil {
			defer fw.Close()
			if fw.Add(m.path) == nil {
				events, errs = fw.Events, fw.Errors
			}
		}
	}
	t := time.NewTicker(m.store.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			// Only a folder directory or the subscriptions file: the
			// root's other files (INBOX's dovecot-uidlist and its lock)
			// change with every delivery.
			base := filepath.Base(ev.Name)
			if _, folder := folderFromDirName(base); !folder && base != subscriptionsName {
				continue
			}
		case _, ok := <-errs:
			if !ok {
				errs = nil
			}
			continue
		}
		sig := m.folderSignature(ready)
		if sig == last {
			continue
		}
		last = sig
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

// stopFolderWatches ends every WatchFolders of the Maildir and waits for
// their goroutines, for Store.Close.
func (u *userState) stopFolderWatches() {
	u.mu.Lock()
	ws := make([]*folderWatch, 0, len(u.folderWatches))
	for w := range u.folderWatches {
		ws = append(ws, w)
	}
	u.mu.Unlock()
	for _, w := range ws {
		w.cancel()
		<-w.done
	}
}

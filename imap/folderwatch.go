package imap

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/mailagent/mailagent/maildir"
)

// mailboxListWatch follows the folder list and the subscriptions of one
// Maildir while sessions of it have NOTIFY, so that folders created,
// deleted or (un)subscribed outside this server (mkdir in the Maildir,
// Dovecot, another node) reach them as MailboxName and
// SubscriptionChange events, and new folders a filter covers are
// watched for message events. It is maildir's WatchFolders (fsnotify
// and a poll) and a comparison with the sets last seen. A rename made
// outside is told as the old name's deletion and the new name's
// creation: nothing on disk links the two.
type mailboxListWatch struct {
	// changing is held shared by this server's commands that create,
	// delete, rename, subscribe or unsubscribe, from before they change
	// the Maildir until the sets below include the change, and
	// exclusively by the watch while it compares: so each change is told
	// once, by the command's session or, made elsewhere, by the watch.
	changing sync.RWMutex

	mu      sync.Mutex // guards the sets; held while they are listed
	folders map[string]bool
	subs    map[string]bool

	md     *maildir.Maildir
	cancel context.CancelFunc
	done   chan struct{}
}

// startListWatch starts the watch of the Maildir md for its first
// notifier. s.notifyMu is held.
func (s *Server) startListWatch(md *maildir.Maildir) {
	path := md.Path()
	if s.listWatches[path] != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	ch, err := md.WatchFolders(ctx)
	if err != nil {
		cancel()
		s.log.Debug("imap: watching the mailbox list", "err", err)
		return
	}
	w := &mailboxListWatch{md: md, cancel: cancel, done: make(chan struct{})}
	w.refresh(ctx) // what the first change is compared with
	if s.listWatches == nil {
		s.listWatches = map[string]*mailboxListWatch{}
	}
	s.listWatches[path] = w
	go s.runListWatch(ctx, w, ch)
}

// stopListWatch ends the watch of the Maildir at path once it has no
// notifier left, and waits for it. s.notifyMu is not held.
func (s *Server) stopListWatch(path string) {
	s.notifyMu.Lock()
	w := s.listWatches[path]
	if w == nil || len(s.notifiers[path]) > 0 {
		s.notifyMu.Unlock()
		return
	}
	delete(s.listWatches, path)
	s.notifyMu.Unlock()
	w.cancel()
	<-w.done
}

// listWatch returns the watch of the Maildir at path, nil if none.
func (s *Server) listWatch(path string) *mailboxListWatch {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.listWatches[path]
}

// refresh lists the folders and subscriptions into the sets, and
// returns the sets they replace (nil, nil when they cannot be read).
func (w *mailboxListWatch) refresh(ctx context.Context) (oldFolders, oldSubs map[string]bool) {
	folders, err := w.md.Folders(ctx)
	if err != nil {
		return nil, nil
	}
	subs, err := w.md.Subscriptions(ctx)
	if err != nil {
		return nil, nil
	}
	w.mu.Lock()
	known := w.folders
	w.mu.Unlock()
	fs := make(map[string]bool, len(folders))
	for _, f := range folders {
		// A folder new since the last listing counts once it is
		// complete: one another program is still creating is not
		// opened under it (see maildir's FolderReady).
		if !f.NonExistent && (known == nil || known[f.Name] || w.md.FolderReady(f.Name)) {
			fs[f.Name] = true
		}
	}
	ss := make(map[string]bool, len(subs))
	for _, n := range subs {
		ss[n] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	oldFolders, oldSubs = w.folders, w.subs
	w.folders, w.subs = fs, ss
	return oldFolders, oldSubs
}

// runListWatch compares the folder list and subscriptions with the
// sets at each signal and tells the notifiers what changed.
func (s *Server) runListWatch(ctx context.Context, w *mailboxListWatch, ch <-chan struct{}) {
	defer close(w.done)
	path := w.md.Path()
	for range ch {
		w.changing.Lock()
		oldFolders, oldSubs := w.refresh(ctx)
		w.mu.Lock()
		folders, subs := w.folders, w.subs
		w.mu.Unlock()
		var evs []listEvent
		if oldFolders != nil {
			for name := range oldFolders {
				if !folders[name] {
					evs = append(evs, listEvent{name: name, attrs: `\NonExistent`})
				}
			}
			for name := range folders {
				if !oldFolders[name] {
					evs = append(evs, listEvent{name: name})
				}
			}
			for name := range oldSubs {
				if !subs[name] {
					evs = append(evs, listEvent{name: name, subscription: true})
				}
			}
			for name := range subs {
				if !oldSubs[name] {
					evs = append(evs, listEvent{name: name, attrs: `\Subscribed`, subscription: true})
				}
			}
		}
		slices.SortFunc(evs, func(a, b listEvent) int { return strings.Compare(a.name, b.name) })
		for _, ev := range evs {
			s.mailboxEvent(path, ev, nil)
		}
		w.changing.Unlock()
	}
}

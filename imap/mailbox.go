package imap

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/mailagent/mailagent/maildir"
)

// mailboxKey names one folder of one Maildir.
type mailboxKey struct{ path, name string }

// mailbox is the view of one folder shared by every session that has it
// selected: the UIDs in sequence-number order as the server last
// announced them, and go-imap's tracker that turns changes into each
// session's EXISTS, EXPUNGE and FETCH updates. One watcher per mailbox
// follows maildir's change notification, so the cost of a change does not
// grow with the number of sessions.
type mailbox struct {
	srv  *Server
	key  mailboxKey
	refs int // guarded by srv.mu

	md     *maildir.Maildir
	folder *maildir.Folder
	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex
	uids        []uint32
	uidValidity uint32
	tracker     *imapserver.MailboxTracker
	// announced holds flags a session already reported for its own
	// change, so that maildir's later event for it is not sent twice.
	announced map[uint32]string
}

// openMailbox returns the shared view of the folder name of the Maildir
// at path, creating it (and its watcher) for the first session; then it
// also returns the Snapshot the view was made from.
func (s *Server) openMailbox(ctx context.Context, path, name string) (*mailbox, *maildir.Snapshot, error) {
	key := mailboxKey{path, name}
	s.mu.Lock()
	defer s.mu.Unlock()
	if mb := s.mailboxes[key]; mb != nil {
		mb.refs++
		return mb, nil, nil
	}
	md, err := s.opts.Store.Open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	f, err := md.Folder(ctx, name)
	if err != nil {
		md.Close()
		return nil, nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	ch, err := f.Watch(wctx)
	if err != nil {
		cancel()
		md.Close()
		return nil, nil, err
	}
	snap, err := f.Snapshot(ctx)
	if err != nil {
		cancel()
		md.Close()
		return nil, nil, err
	}
	mb := &mailbox{
		srv: s, key: key, refs: 1, md: md, folder: f, cancel: cancel, done: make(chan struct{}),
		uids: make([]uint32, len(snap.Messages)), uidValidity: snap.UIDValidity,
		tracker:   imapserver.NewMailboxTracker(uint32(len(snap.Messages))),
		announced: map[uint32]string{},
	}
	for i := range snap.Messages {
		mb.uids[i] = snap.Messages[i].UID
	}
	s.mailboxes[key] = mb
	go mb.watch(wctx, ch)
	return mb, snap, nil
}

// releaseMailbox drops a session's reference; the last one stops the
// watcher.
func (s *Server) releaseMailbox(mb *mailbox) {
	s.mu.Lock()
	mb.refs--
	last := mb.refs == 0
	if last {
		delete(s.mailboxes, mb.key)
	}
	s.mu.Unlock()
	if last {
		mb.cancel()
		<-mb.done
		mb.md.Close()
	}
}

// refreshMailbox brings the shared view of a folder, if any session has
// it selected, up to date at once, so that a session's own APPEND or COPY
// is announced in its own tagged response.
func (s *Server) refreshMailbox(ctx context.Context, path, name string) {
	s.mu.Lock()
	mb := s.mailboxes[mailboxKey{path, name}]
	if mb != nil {
		mb.refs++
	}
	s.mu.Unlock()
	if mb == nil {
		return
	}
	mb.resync(ctx)
	s.releaseMailbox(mb)
}

// watch applies maildir's events to the view until ctx ends. A channel
// closed early means the folder was deleted or renamed: every message is
// then expunged from the view.
func (mb *mailbox) watch(ctx context.Context, ch <-chan maildir.Event) {
	defer close(mb.done)
	for ev := range ch {
		var flags, expunged []uint32
		reset := false
		add := func(ev maildir.Event) {
			switch ev.Kind {
			case maildir.EventNew, maildir.EventReset:
				reset = true
			case maildir.EventExpunged:
				expunged = append(expunged, ev.UIDs...)
			case maildir.EventFlags:
				flags = append(flags, ev.UIDs...)
			}
		}
		add(ev)
		// Coalesce what is already queued: one Snapshot for a burst of
		// deliveries.
	drain:
		for {
			select {
			case ev, ok := <-ch:
				if !ok {
					break drain
				}
				add(ev)
			default:
				break drain
			}
		}
		if len(expunged) > 0 {
			mb.mu.Lock()
			mb.removeLocked(expunged)
			mb.mu.Unlock()
		}
		if reset {
			mb.resync(ctx)
		}
		if len(flags) > 0 {
			mb.flagsChanged(ctx, flags)
		}
	}
	if ctx.Err() == nil {
		mb.mu.Lock()
		for i := len(mb.uids); i > 0; i-- {
			mb.tracker.QueueExpunge(uint32(i))
		}
		mb.uids = nil
		mb.mu.Unlock()
	}
}

// resync takes a Snapshot and applies it to the view.
func (mb *mailbox) resync(ctx context.Context) {
	snap, err := mb.folder.Snapshot(ctx)
	if err != nil {
		mb.srv.log.Debug("imap: mailbox resync", "mailbox", mb.key.name, "err", err)
		return
	}
	mb.mu.Lock()
	mb.syncLocked(snap)
	mb.mu.Unlock()
}

// syncLocked makes the view equal to snap. Sequence numbers can only grow
// at the end, so a message that appears below the highest UID already
// announced (another process renumbered the folder) is announced by
// expunging the messages above it and announcing them again.
func (mb *mailbox) syncLocked(snap *maildir.Snapshot) {
	next := make([]uint32, len(snap.Messages))
	for i := range snap.Messages {
		next[i] = snap.Messages[i].UID
	}
	old := mb.uids
	// p: the longest prefix of next that the view keeps, in order.
	p := 0
	if snap.UIDValidity == mb.uidValidity {
		i := 0
		for _, u := range next {
			for i < len(old) && old[i] < u {
				i++
			}
			if i == len(old) || old[i] != u {
				break
			}
			p++
		}
	} else {
		clear(mb.announced)
	}
	mb.uidValidity = snap.UIDValidity
	keep := next[:p]
	k := p - 1
	for i := len(old) - 1; i >= 0; i-- {
		if k >= 0 && old[i] == keep[k] {
			k--
			continue
		}
		mb.tracker.QueueExpunge(uint32(i + 1))
	}
	if added := len(next) - p; added > 0 {
		// One EXISTS per message keeps go-imap's sequence translation
		// exact for messages not yet announced to a session; a large
		// batch is announced at once.
		if added <= 64 {
			for n := p + 1; n <= len(next); n++ {
				mb.tracker.QueueNumMessages(uint32(n))
			}
		} else {
			mb.tracker.QueueNumMessages(uint32(len(next)))
		}
	}
	mb.uids = next
}

// removeLocked expunges uids from the view (those still in it).
func (mb *mailbox) removeLocked(uids []uint32) {
	slices.Sort(uids)
	for i := len(uids) - 1; i >= 0; i-- {
		idx, ok := slices.BinarySearch(mb.uids, uids[i])
		if !ok {
			continue
		}
		mb.uids = slices.Delete(mb.uids, idx, idx+1)
		delete(mb.announced, uids[i])
		mb.tracker.QueueExpunge(uint32(idx + 1))
	}
}

// flagsChanged announces new flags of uids to every session, except
// changes a session has already reported itself.
func (mb *mailbox) flagsChanged(ctx context.Context, uids []uint32) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	for _, uid := range uids {
		idx, ok := slices.BinarySearch(mb.uids, uid)
		if !ok {
			continue
		}
		m, err := mb.folder.Message(ctx, uid)
		if err != nil {
			continue
		}
		key := strings.Join(m.Flags, " ")
		if prev, ok := mb.announced[uid]; ok {
			delete(mb.announced, uid)
			if prev == key {
				continue
			}
		}
		mb.tracker.QueueMessageFlags(uint32(idx+1), imap.UID(uid), imapFlags(&m), nil)
	}
}

// storedLocked records flags a session reported for its own change and
// queues them for the other sessions.
func (mb *mailbox) storedLocked(m *maildir.Message, source *imapserver.SessionTracker) {
	idx, ok := slices.BinarySearch(mb.uids, m.UID)
	if !ok {
		return
	}
	mb.announced[m.UID] = strings.Join(m.Flags, " ")
	mb.tracker.QueueMessageFlags(uint32(idx+1), imap.UID(m.UID), imapFlags(m), source)
}

// imapFlags returns a message's flags in IMAP's type.
func imapFlags(m *maildir.Message) []imap.Flag {
	out := make([]imap.Flag, 0, len(m.Flags)+1)
	for _, f := range m.Flags {
		out = append(out, imap.Flag(f))
	}
	if m.Recent {
		out = append(out, imap.Flag(`\Recent`))
	}
	return out
}

package imap

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/maildir"
)

// mailboxKey names one folder of one Maildir.
type mailboxKey struct{ path, name string }

// mailbox is the view of one folder shared by every session that has it
// selected: its UIDs in order as last seen, which each session compares
// with what it has told its client to send EXISTS and EXPUNGE, and the
// flag changes each session has yet to report. One watcher per mailbox
// follows maildir's change notification, so the cost of a change does
// not grow with the number of sessions.
type mailbox struct {
	srv  *Server
	key  mailboxKey
	refs int // guarded by srv.mu

	md     *maildir.Maildir
	folder *maildir.Folder
	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	// uids is never changed in place, only replaced: sessions keep the
	// slice they last reported as their view, without a copy.
	uids        []uint32
	uidValidity uint32
	sessions    map[*selection]struct{}
	// announced holds flags a session already reported for its own
	// change, so that maildir's later event for it is not sent twice.
	announced map[uint32]string
	// watchers are NOTIFY's sessions watching the mailbox unselected
	// (notify.go).
	watchers map[*watchedMailbox]struct{}
	// applied is the Seq of the last maildir event taken into the view;
	// advanced is closed (and replaced) when it grows.
	applied  uint64
	advanced chan struct{}
}

// maxCatchUp bounds how long NOOP waits for the view to take in the
// changes maildir has found (see catchUp).
const maxCatchUp = 5 * time.Second

// openMailbox returns the shared view of the folder name of the Maildir
// at path, creating it (and its watcher) for the first session; then it
// also returns the Selection the view was made from, taken with claim
// (see maildir's Folder.Select).
func (s *Server) openMailbox(ctx context.Context, path, name string, claim bool) (*mailbox, *maildir.Selection, error) {
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
	// The events up to seq are in ch and in the Selection taken after.
	seq, err := f.LastEvent(ctx)
	var fs *maildir.Selection
	if err == nil {
		fs, err = f.Select(ctx, claim)
	}
	if err != nil {
		cancel()
		md.Close()
		return nil, nil, err
	}
	mb := &mailbox{
		srv: s, key: key, refs: 1, md: md, folder: f, cancel: cancel, done: make(chan struct{}),
		uids: fs.UIDs, uidValidity: fs.UIDValidity,
		sessions:  map[*selection]struct{}{},
		announced: map[uint32]string{},
		applied:   seq,
		advanced:  make(chan struct{}),
	}
	s.mailboxes[key] = mb
	go mb.watch(wctx, ch)
	return mb, fs, nil
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
	// modseq is the highest modseq of the changes taken in: after
	// dropped events (EventReset), the flag changes since it are found
	// from the folder's modseqs.
	var modseq uint64
	for ev := range ch {
		var flags, expunged []uint32
		reset := false
		var seq uint64
		add := func(ev maildir.Event) {
			seq = max(seq, ev.Seq)
			modseq = max(modseq, ev.ModSeq)
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
			if modseq > 0 {
				// The flag changes of events dropped.
				if ms, err := mb.folder.ChangedSince(ctx, modseq); err == nil {
					for _, m := range ms {
						flags = append(flags, m.UID)
						modseq = max(modseq, m.ModSeq)
					}
				}
			}
		}
		if len(flags) > 0 {
			mb.flagsChanged(ctx, flags)
		}
		mb.mu.Lock()
		if seq > mb.applied {
			mb.applied = seq
			close(mb.advanced)
			mb.advanced = make(chan struct{})
		}
		mb.mu.Unlock()
	}
	if ctx.Err() == nil {
		mb.mu.Lock()
		mb.uids = nil
		mb.notifyLocked()
		mb.mu.Unlock()
	}
}

// catchUp has maildir look for changes made by other processes (a cheap
// sync) and waits until the view has taken in every change found so
// far, so that the next poll tells the client of them: NOOP and CHECK
// (RFC 9051 section 6.1.2: a poll for updates).
func (mb *mailbox) catchUp(ctx context.Context, f *maildir.Folder) {
	seq, err := f.LastEvent(ctx)
	if err != nil {
		return
	}
	timer := time.NewTimer(maxCatchUp)
	defer timer.Stop()
	for {
		mb.mu.Lock()
		done, advanced := mb.applied >= seq, mb.advanced
		mb.mu.Unlock()
		if done {
			return
		}
		select {
		case <-advanced:
		case <-mb.done:
			return
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		}
	}
}

// resync takes the folder's UIDs anew and applies them to the view.
func (mb *mailbox) resync(ctx context.Context) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if _, err := mb.selectLocked(ctx, false); err != nil {
		mb.srv.log.Debug("imap: mailbox resync", "mailbox", mb.key.name, "err", err)
	}
}

// selectLocked takes a Selection (claiming the Recent messages with
// claim) and applies it to the view. Both are done under mb.mu: a
// Selection taken before another change was applied to the view (an
// expunge, a newer Selection) and applied after it would take the view
// back, and sessions would be told of expunges that did not happen and
// miss flag changes to the messages it dropped.
func (mb *mailbox) selectLocked(ctx context.Context, claim bool) (*maildir.Selection, error) {
	fs, err := mb.folder.Select(ctx, claim)
	if err != nil {
		return nil, err
	}
	mb.syncLocked(fs)
	return fs, nil
}

// currentLocked returns fs if the view is still made of its UIDs, and
// otherwise a new Selection (taken with claim) applied to the view.
func (mb *mailbox) currentLocked(ctx context.Context, fs *maildir.Selection, claim bool) (*maildir.Selection, error) {
	if fs != nil && fs.UIDValidity == mb.uidValidity && slices.Equal(fs.UIDs, mb.uids) {
		return fs, nil
	}
	return mb.selectLocked(ctx, claim)
}

// syncLocked makes the view equal to fs. Each session works out what
// to tell its client from the difference (selection.poll).
func (mb *mailbox) syncLocked(fs *maildir.Selection) {
	if fs.UIDValidity != mb.uidValidity {
		clear(mb.announced)
	}
	mb.uidValidity = fs.UIDValidity
	if !slices.Equal(fs.UIDs, mb.uids) {
		mb.uids = fs.UIDs
		mb.notifyLocked()
	}
}

// removeLocked expunges uids from the view (those still in it).
func (mb *mailbox) removeLocked(uids []uint32) {
	slices.Sort(uids)
	next := make([]uint32, 0, len(mb.uids))
	for _, u := range mb.uids {
		if _, found := slices.BinarySearch(uids, u); found {
			delete(mb.announced, u)
			continue
		}
		next = append(next, u)
	}
	if len(next) != len(mb.uids) {
		mb.uids = next
		mb.notifyLocked()
	}
}

// notifyLocked wakes the sessions waiting in IDLE.
func (mb *mailbox) notifyLocked() {
	for sel := range mb.sessions {
		sel.wake()
	}
	for w := range mb.watchers {
		w.touch()
	}
}

// flagsChanged announces new flags of uids to every session, except
// changes a session has already reported itself.
func (mb *mailbox) flagsChanged(ctx context.Context, uids []uint32) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	for _, uid := range uids {
		if _, ok := slices.BinarySearch(mb.uids, uid); !ok {
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
		mb.flagsChangedLocked(uid, nil)
	}
}

// flagsChangedLocked records that uid's flags changed for every session
// but source, which has reported them itself.
func (mb *mailbox) flagsChangedLocked(uid uint32, source *selection) {
	for sel := range mb.sessions {
		if sel == source {
			continue
		}
		if sel.flags == nil {
			sel.flags = map[uint32]struct{}{}
		}
		sel.flags[uid] = struct{}{}
		sel.wake()
	}
	for w := range mb.watchers {
		w.touch()
	}
}

// storedLocked records flags a session reported for its own change and
// tells the other sessions.
func (mb *mailbox) storedLocked(m *maildir.Message, source *selection) {
	if _, ok := slices.BinarySearch(mb.uids, m.UID); !ok {
		return
	}
	mb.announced[m.UID] = strings.Join(m.Flags, " ")
	mb.flagsChangedLocked(m.UID, source)
}

// imapFlags returns a message's flags in IMAP's type; \Recent only for
// IMAP4rev1 (RFC 9051 has none).
func imapFlags(m *maildir.Message, rev2 bool) []imap.Flag {
	out := make([]imap.Flag, 0, len(m.Flags)+1)
	for _, f := range m.Flags {
		out = append(out, imap.Flag(f))
	}
	if m.Recent && !rev2 {
		out = append(out, imap.Flag(`\Recent`))
	}
	return out
}

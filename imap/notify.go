package imap

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/maildir"
)

// NOTIFY (RFC 5465): a session names mailboxes and events, and is told
// of them as they happen, between commands too, without IDLE or
// polling. Non-selected mailboxes are watched through the same shared
// views (mailbox.go) selected ones use, so a change found by maildir's
// change notification, another process's delivery included, reaches
// them; their news is an untagged STATUS. MailboxName and
// SubscriptionChange come from this server's other sessions of the
// same user and from changes made outside this server (folderwatch.go),
// as LIST responses.

// maxNotifyMailboxes bounds the mailboxes one NOTIFY watches: each holds
// a shared view and its maildir watcher while the session lasts.
var maxNotifyMailboxes = 1000

// notifyEvents are the events offered, for BADEVENT.
const notifyEvents = "(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)"

// notifier is a session's NOTIFY SET.
type notifier struct {
	s    *session
	wake chan struct{} // news of a watched mailbox or a LIST event

	// The selected mailbox: selEvents when a selected filter asked for
	// message events, selDelayed for selected-delayed (expunges wait
	// for a command that allows them), selFetch MessageNew's items.
	selEvents, selDelayed bool
	selFetch              *fetchItems
	selUIDItem            bool // MessageNew's items name UID

	watched []*watchedMailbox
	// groups are the non-selected filters, for MailboxName and
	// SubscriptionChange, and for watching the mailboxes created after
	// NOTIFY SET that they cover.
	groups []notifyFilter

	mu   sync.Mutex
	list []listEvent // LIST responses due, from other sessions
	// adds are mailboxes created (or renamed to) since that a filter
	// with message events covers, to be watched by the session's own
	// goroutine.
	adds []watchAdd
}

// watchAdd is a mailbox to start watching.
type watchAdd struct {
	name  string
	flags bool
}

// notifyFilter is a non-selected filter's mailboxes and its mailbox
// events.
type notifyFilter struct {
	kind          string          // INBOXES, PERSONAL, SUBSCRIBED, SUBTREE, MAILBOXES
	names         []string        // the Maildir's names (INBOX as "INBOX")
	ns            namespace       // how the client knows them, for SUBTREE
	subscribed    map[string]bool // SUBSCRIBED's names when NOTIFY was set
	mailboxName   bool            // MailboxName
	subscriptions bool            // SubscriptionChange
	messages      bool            // MessageNew and MessageExpunge
	flags         bool            // FlagChange
}

// matches reports whether the filter covers mailbox name.
func (f *notifyFilter) matches(name string) bool {
	switch f.kind {
	case "INBOXES":
		return name == "INBOX"
	case "PERSONAL":
		return true
	case "SUBSCRIBED":
		return f.subscribed[name]
	case "SUBTREE":
		// Compared as the client knows the names: with the namespace
		// prefix "INBOX.", the subtree of INBOX is every folder
		// (INBOX.Sent, INBOX.Archive.2024 are below it).
		out := f.ns.out(name)
		for _, n := range f.names {
			if o := f.ns.out(n); out == o || strings.HasPrefix(out, o+string(delim)) {
				return true
			}
		}
	case "MAILBOXES":
		return slices.Contains(f.names, name)
	}
	return false
}

// watchedMailbox is one non-selected mailbox a notifier watches.
type watchedMailbox struct {
	n     *notifier
	name  string
	mb    *mailbox
	flags bool // FlagChange: UNSEEN is reported too
	dirty atomic.Bool
	last  string // the STATUS last reported
}

// touch marks the mailbox changed and wakes its session. It is called
// with mb.mu held.
func (w *watchedMailbox) touch() {
	w.dirty.Store(true)
	select {
	case w.n.wake <- struct{}{}:
	default:
	}
}

// listEvent is a LIST response due to MailboxName or SubscriptionChange.
type listEvent struct {
	name, oldName string
	attrs         string
	subscription  bool
}

var errNotifyBadEvent = &imap.Error{Type: imap.StatusResponseTypeNo, Code: "BADEVENT " + notifyEvents, Text: "Event not supported"}

func notifyBad(text string) error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: text}
}

// cmdNotify serves NOTIFY SET and NOTIFY NONE.
func (c *conn) cmdNotify(cmd *imapwire.Command) (okStatus, error) {
	a := cmd.Args.(*imapwire.Notify)
	s := c.sess
	if a.None {
		s.stopNotify()
		return okStatus{}, nil
	}
	n := &notifier{s: s, wake: make(chan struct{}, 1)}
	type want struct {
		name  string
		flags bool
	}
	var wants []want
	seen := map[string]int{}
	for _, g := range a.Groups {
		var msgNew, msgExpunge, flagChange, names, subs bool
		var fetch *imapwire.Fetch
		for _, ev := range g.Events {
			switch ev.Name {
			case "MESSAGENEW":
				msgNew, fetch = true, ev.Fetch
			case "MESSAGEEXPUNGE":
				msgExpunge = true
			case "FLAGCHANGE":
				flagChange = true
			case "MAILBOXNAME":
				names = true
			case "SUBSCRIPTIONCHANGE":
				subs = true
			default:
				// AnnotationChange, MailboxMetadataChange,
				// ServerMetadataChange (no METADATA here) and any other.
				return okStatus{}, errNotifyBadEvent
			}
		}
		// RFC 5465 section 5: MessageNew and MessageExpunge go
		// together, and FlagChange needs both.
		if msgNew != msgExpunge || flagChange && !msgNew {
			return okStatus{}, notifyBad("MessageNew and MessageExpunge go together, and FlagChange needs both")
		}
		selected := g.Filter == "SELECTED" || g.Filter == "SELECTED-DELAYED"
		if fetch != nil && !selected {
			return okStatus{}, notifyBad("MessageNew's FETCH items are for the selected mailbox only")
		}
		if selected {
			n.selEvents, n.selDelayed = msgNew, g.Filter == "SELECTED-DELAYED"
			if fetch != nil {
				if fetch.Vanished || fetch.HasChangedSince {
					return okStatus{}, notifyBad("Invalid FETCH item for MessageNew")
				}
				n.selUIDItem = fetch.UIDItem
				n.selFetch = &fetchItems{opts: fetch.Options, rfc822: fetch.RFC822, rfc822Header: fetch.RFC822Header,
					rfc822Text: fetch.RFC822Text, emailID: fetch.EmailID, threadID: fetch.ThreadID, saveDate: fetch.SaveDate,
					preview: previewItemOf(fetch)}
			}
			continue
		}
		for i, name := range g.Mailboxes {
			if strings.EqualFold(name, "INBOX") {
				g.Mailboxes[i] = "INBOX"
			}
		}
		f := notifyFilter{kind: g.Filter, names: g.Mailboxes, ns: s.srv.namespace(), mailboxName: names, subscriptions: subs,
			messages: msgNew, flags: flagChange}
		var watch []string
		switch g.Filter {
		case "INBOXES":
			watch = []string{"INBOX"}
		case "PERSONAL", "SUBTREE":
			folders, err := s.md.Folders(s.ctx)
			if err != nil {
				return okStatus{}, mapError(err)
			}
			for _, fi := range folders {
				if !fi.NonExistent && f.matches(fi.Name) {
					watch = append(watch, fi.Name)
				}
			}
		case "SUBSCRIBED":
			subsList, err := s.md.Subscriptions(s.ctx)
			if err != nil {
				return okStatus{}, mapError(err)
			}
			f.subscribed = map[string]bool{}
			for _, name := range subsList {
				f.subscribed[name] = true
			}
			watch = subsList
		case "MAILBOXES":
			watch = g.Mailboxes
		}
		n.groups = append(n.groups, f)
		if !msgNew {
			continue
		}
		for _, name := range watch {
			if i, ok := seen[name]; ok {
				wants[i].flags = wants[i].flags || flagChange
				continue
			}
			if len(wants) == maxNotifyMailboxes {
				return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
					Text: "NOTIFY may watch at most " + strconv.Itoa(maxNotifyMailboxes) + " mailboxes"}
			}
			seen[name] = len(wants)
			wants = append(wants, want{name, flagChange})
		}
	}
	s.stopNotify()
	for _, wt := range wants {
		s.watch(n, wt.name, wt.flags)
	}
	s.notify = n
	s.srv.addNotifier(s.md, n)
	for _, w := range n.watched {
		if a.Status {
			w.dirty.Store(true)
		} else {
			_, w.last = s.notifyStatus(w) // only changes from now on
		}
	}
	s.pushNotify(c.w)
	return okStatus{}, nil
}

// watch starts watching mailbox name for n, if it exists.
func (s *session) watch(n *notifier, name string, flags bool) *watchedMailbox {
	f, err := s.md.Folder(s.ctx, name)
	if err != nil {
		return nil // not there (yet): nothing to watch
	}
	mb, _, err := s.srv.openMailbox(s.ctx, s.md.Path(), f.Name(), false)
	if err != nil {
		return nil
	}
	w := &watchedMailbox{n: n, name: f.Name(), mb: mb, flags: flags}
	mb.mu.Lock()
	if mb.watchers == nil {
		mb.watchers = map[*watchedMailbox]struct{}{}
	}
	mb.watchers[w] = struct{}{}
	mb.mu.Unlock()
	n.watched = append(n.watched, w)
	return w
}

// stopNotify ends the session's NOTIFY, if any.
func (s *session) stopNotify() {
	n := s.notify
	if n == nil {
		return
	}
	s.notify = nil
	s.srv.removeNotifier(s.md.Path(), n)
	s.srv.stopListWatch(s.md.Path())
	for _, w := range n.watched {
		w.mb.mu.Lock()
		delete(w.mb.watchers, w)
		w.mb.mu.Unlock()
		s.srv.releaseMailbox(w.mb)
	}
}

// notifyStatus returns the STATUS of a watched mailbox as it is now,
// and its items as a string to compare; nil and "" when it cannot be
// read. MESSAGES, UIDNEXT and UIDVALIDITY tell of new and expunged
// messages; for FlagChange, HIGHESTMODSEQ once CONDSTORE is on, else
// UNSEEN (RFC 5465 section 5.2), as Dovecot sends them.
func (s *session) notifyStatus(w *watchedMailbox) (*imap.StatusData, string) {
	opts := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true,
		NumUnseen: w.flags && !s.nc.condstore, HighestModSeq: w.flags && s.nc.condstore}
	d, err := s.status(w.name, opts)
	if err != nil {
		return nil, ""
	}
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(*d.NumMessages), 10))
	b.WriteString(" " + strconv.FormatUint(uint64(d.UIDNext), 10))
	b.WriteString(" " + strconv.FormatUint(uint64(d.UIDValidity), 10))
	if d.NumUnseen != nil {
		b.WriteString(" " + strconv.FormatUint(uint64(*d.NumUnseen), 10))
	}
	if opts.HighestModSeq {
		b.WriteString(" " + strconv.FormatUint(d.HighestModSeq, 10))
	}
	return d, b.String()
}

// pushNotify writes the news of watched non-selected mailboxes (STATUS)
// and the LIST responses due.
func (s *session) pushNotify(w *imapwire.Writer) {
	n := s.notify
	if n == nil {
		return
	}
	selected := ""
	if s.sel != nil {
		selected = s.sel.mb.key.name
	}
	for _, wm := range n.watched {
		if !wm.dirty.Swap(false) || wm.name == selected {
			continue // the selected mailbox's news comes as EXISTS, EXPUNGE and FETCH
		}
		d, key := s.notifyStatus(wm)
		if d == nil || key == wm.last {
			continue
		}
		wm.last = key
		writeStatus(w, d, "")
	}
	n.mu.Lock()
	events, adds := n.list, n.adds
	n.list, n.adds = nil, nil
	n.mu.Unlock()
	for _, a := range adds {
		if len(n.watched) >= maxNotifyMailboxes || slices.ContainsFunc(n.watched, func(w *watchedMailbox) bool { return w.name == a.name }) {
			continue
		}
		if w := s.watch(n, a.name, a.flags); w != nil {
			_, w.last = s.notifyStatus(w) // news from now on
		}
	}
	for _, ev := range events {
		w.Untagged()
		w.Atom("LIST (" + ev.attrs + `) "` + string(delim) + `" `)
		w.Mailbox(s.srv.namespace().out(ev.name))
		if ev.oldName != "" {
			w.Atom(` ("OLDNAME" (`)
			w.Mailbox(s.srv.namespace().out(ev.oldName))
			w.Atom("))")
		}
		w.End()
	}
}

// pollNotify is poll, and for NOTIFY's MessageNew with FETCH items on
// the selected mailbox, a FETCH of each new message after its EXISTS.
func (s *session) pollNotify(w *imapwire.Writer, allowExpunge bool) error {
	sel := s.sel
	if len(sel.contexts) > 0 {
		return s.pollContexts(w, allowExpunge)
	}
	return s.pollFetchNew(w, allowExpunge)
}

// pollFetchNew is poll with NOTIFY's FETCH of new messages.
func (s *session) pollFetchNew(w *imapwire.Writer, allowExpunge bool) error {
	n := s.notify
	if n == nil || n.selFetch == nil {
		return s.poll(w, allowExpunge)
	}
	var before uint32
	if v := s.sel.view; len(v) > 0 {
		before = v[len(v)-1]
	}
	if err := s.poll(w, allowExpunge); err != nil {
		return err
	}
	view := s.sel.view
	i, _ := slices.BinarySearch(view, before+1)
	var refs []ref
	for ; i < len(view); i++ {
		refs = append(refs, ref{seq: uint32(i + 1), uid: view[i]})
	}
	if len(refs) == 0 {
		return nil
	}
	items := *n.selFetch
	// As cmdFetch: MODSEQ and UID once CONDSTORE is on, UIDFETCH after
	// UIDONLY (RFC 9586).
	items.opts.ModSeq = s.nc.condstore
	items.opts.UID = items.opts.UID || s.nc.condstore
	if s.nc.uidOnly {
		items.opts.UID = n.selUIDItem
	}
	return s.fetchRefs(w, refs, &items)
}

// notifyWake is the channel that signals NOTIFY's news, nil without it.
func (s *session) notifyWake() <-chan struct{} {
	if s == nil || s.notify == nil {
		return nil
	}
	return s.notify.wake
}

// awaitCommand waits for the client's next command while NOTIFY is on,
// writing news as it happens (RFC 5465 section 3: at any time, not only
// during IDLE). A goroutine waits for the command's first byte; the
// command itself is read as usual once it has come, so only this
// goroutine writes.
func (c *conn) awaitCommand() {
	s := c.sess
	if s == nil || s.notify == nil || c.br.Buffered() > 0 {
		return
	}
	var selNews <-chan struct{}
	if s.sel != nil && s.notify.selEvents {
		selNews = s.sel.notify
	}
	done := make(chan struct{})
	go func() {
		c.br.Peek(1) // an error is met again by ReadCommand
		close(done)
	}()
	for {
		select {
		case <-done:
			return
		case <-s.notify.wake:
		case <-selNews:
		}
		c.startWrite()
		if selNews != nil {
			if err := s.pollNotify(c.w, !s.notify.selDelayed); err != nil {
				c.srv.log.Error("imap: NOTIFY", "session", c.id, "err", err)
			}
		}
		s.pushNotify(c.w)
		if c.flush() != nil {
			c.raw.Close() // the reader ends with the connection
			<-done
			return
		}
	}
}

// addNotifier registers n for the mailbox events of the Maildir md, and
// watches md's folder list for changes made outside this server
// (folderwatch.go).
func (s *Server) addNotifier(md *maildir.Maildir, n *notifier) {
	path := md.Path()
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.startListWatch(md)
	if s.notifiers == nil {
		s.notifiers = map[string]map[*notifier]struct{}{}
	}
	if s.notifiers[path] == nil {
		s.notifiers[path] = map[*notifier]struct{}{}
	}
	s.notifiers[path][n] = struct{}{}
}

func (s *Server) removeNotifier(path string, n *notifier) {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	delete(s.notifiers[path], n)
	if len(s.notifiers[path]) == 0 {
		delete(s.notifiers, path)
	}
}

// mailboxEvent tells the sessions of the Maildir at path that have
// NOTIFY with MailboxName (or SubscriptionChange, for subscription) of a
// change to mailbox name, but for the session from that made it (nil
// for a change made outside this server).
func (srv *Server) mailboxEvent(path string, ev listEvent, from *session) {
	srv.notifyMu.Lock()
	defer srv.notifyMu.Unlock()
	for n := range srv.notifiers[path] {
		if !ev.subscription && ev.attrs == "" {
			// Created, or renamed to: watched from now on where a
			// filter with message events covers it, for this session
			// too.
			for i := range n.groups {
				if g := &n.groups[i]; g.messages && g.matches(ev.name) {
					n.mu.Lock()
					if len(n.adds) < maxNotifyMailboxes {
						n.adds = append(n.adds, watchAdd{ev.name, g.flags})
					}
					n.mu.Unlock()
					n.signal()
					break
				}
			}
		}
		if from != nil && n.s == from {
			continue // its own change: the tagged OK says it
		}
		for i := range n.groups {
			g := &n.groups[i]
			if (ev.subscription && g.subscriptions || !ev.subscription && g.mailboxName) &&
				(g.matches(ev.name) || ev.oldName != "" && g.matches(ev.oldName)) {
				n.mu.Lock()
				if len(n.list) < maxNotifyMailboxes {
					n.list = append(n.list, ev)
				}
				n.mu.Unlock()
				n.signal()
				break
			}
		}
	}
}

// mailboxChanged tells the user's other sessions with NOTIFY of a
// mailbox that cmd, just done, created, deleted, renamed, subscribed
// or unsubscribed.
func (s *session) mailboxChanged(cmd *imapwire.Command) {
	if s == nil || s.md == nil {
		return
	}
	s.srv.notifyMu.Lock()
	none := len(s.srv.notifiers[s.md.Path()]) == 0
	s.srv.notifyMu.Unlock()
	if none {
		return
	}
	var ev listEvent
	var err error
	switch a := cmd.Args.(type) {
	case *imapwire.Create:
		ev.name, err = mailboxName(a.Mailbox)
	case *imapwire.Rename:
		if ev.name, err = mailboxName(a.To); err == nil {
			ev.oldName, err = mailboxName(a.From)
		}
	case *imapwire.Mailbox:
		ev.name, err = mailboxName(a.Name)
		switch cmd.Name {
		case "DELETE":
			ev.attrs = `\NonExistent`
		case "SUBSCRIBE":
			ev.attrs, ev.subscription = `\Subscribed`, true
		case "UNSUBSCRIBE":
			ev.subscription = true
		default:
			return
		}
	default:
		return
	}
	if err == nil {
		s.srv.mailboxEvent(s.md.Path(), ev, s)
	}
	// The change is in the watch's sets before changeLock is released,
	// so the watch does not tell it again.
	if w := s.srv.listWatch(s.md.Path()); w != nil {
		w.refresh(s.ctx)
	}
}

// mailboxChanging is changed by commands that create, delete, rename or
// (un)subscribe mailboxes.
var mailboxChanging = map[string]bool{"CREATE": true, "DELETE": true, "RENAME": true, "SUBSCRIBE": true, "UNSUBSCRIBE": true}

// changeLock holds the Maildir's mailbox-list watch, if any, while cmd
// changes the mailbox list (see mailboxListWatch.changing); the
// function returned releases it.
func (s *session) changeLock(cmd *imapwire.Command) func() {
	if s == nil || s.md == nil || !mailboxChanging[cmd.Name] {
		return func() {}
	}
	w := s.srv.listWatch(s.md.Path())
	if w == nil {
		return func() {}
	}
	w.changing.RLock()
	return w.changing.RUnlock
}

// signal wakes the notifier's session.
func (n *notifier) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

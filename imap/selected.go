package imap

import (
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/maildir"
)

// selection is a session's selected mailbox.
type selection struct {
	mb        *mailbox
	folder    *maildir.Folder // the session's own handle
	readOnly  bool
	searchRes imap.UIDSet // SEARCHRES's "$"

	// view is the UIDs the client knows, in sequence-number order: the
	// mailbox's slice as last reported (never changed in place, so
	// shared without a copy). Only the connection's goroutine uses it.
	view []uint32
	// recent is the messages this session reports \Recent (RFC 3501
	// section 2.3.2): those it claimed from the folder when it selected
	// it read-write or was first told of them, or, EXAMINEd, those
	// no session has claimed yet; ascending. Only the connection's
	// goroutine uses it.
	recent []uint32
	// keywords are the keywords the client has been sent in FLAGS.
	// Only the connection's goroutine uses it.
	keywords []string
	// contexts are the searches kept up to date (searchcontext.go);
	// ctxDirty: the session changed the mailbox itself since they were
	// last run. Only the connection's goroutine uses them.
	contexts []*searchContext
	ctxDirty bool

	// Guarded by mb.mu:
	flags  map[uint32]struct{} // messages whose new flags are not reported yet
	notify chan struct{}       // signalled on news, for IDLE
}

// wake signals news to a session in IDLE.
func (sel *selection) wake() {
	select {
	case sel.notify <- struct{}{}:
	default:
	}
}

// ref is one message a command addresses: its sequence number in the
// client's view and its UID.
type ref struct {
	seq, uid uint32
}

var errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: "READ-ONLY", Text: "Mailbox is read-only"}

var systemFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}

// maxKeywords is how many keywords dovecot-keywords can name per folder.
const maxKeywords = 26

// cmdSelect serves SELECT and EXAMINE from maildir's index.
func (c *conn) cmdSelect(cmd *imapwire.Command) (okStatus, error) {
	a := cmd.Args.(*imapwire.Select)
	if a.QResync != nil && !c.qresync {
		// RFC 7162 section 3.2.5: only after ENABLE QRESYNC.
		return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "ENABLE QRESYNC first"}
	}
	if a.CondStore {
		c.condstore = true
	}
	s := c.sess
	if s.sel != nil {
		s.unselect()
		c.state = stateAuth
		c.w.Status("", imap.StatusResponseTypeOK, "CLOSED", "Previous mailbox is now closed")
	}
	f, err := s.md.Folder(s.ctx, a.Mailbox)
	if err != nil {
		return okStatus{}, folderError(err)
	}
	// One Selection (UIDs, first unseen, Recent claimed when read-write)
	// serves the reply: no Message is built per message.
	mb, snap, err := s.srv.openMailbox(s.ctx, s.md.Path(), f.Name(), !a.ReadOnly)
	if err != nil {
		return okStatus{}, mapError(err)
	}
	sel := &selection{mb: mb, folder: f, readOnly: a.ReadOnly, notify: make(chan struct{}, 1)}
	// The Selection the client is described from is the view's: the one
	// the view was made from if no session changed it since, else one
	// taken and applied under the view's lock. The Recent messages either
	// claimed are the session's.
	var claimed []uint32
	if snap != nil {
		claimed = snap.Recent
	}
	mb.mu.Lock()
	snap, err = mb.currentLocked(s.ctx, snap, !a.ReadOnly)
	if err == nil {
		sel.view = mb.uids
		mb.sessions[sel] = struct{}{}
	}
	mb.mu.Unlock()
	if err != nil {
		s.srv.releaseMailbox(mb)
		return okStatus{}, mapError(err)
	}
	sel.addRecent(claimed)
	sel.addRecent(snap.Recent)
	s.mu.Lock()
	s.sel = sel
	s.mu.Unlock()
	c.state = stateSelected

	w := c.w
	flags := append(slices.Clone(systemFlags), keywordFlags(snap.Keywords)...)
	sel.keywords = slices.Clone(snap.Keywords)
	w.Untagged()
	w.Atom("FLAGS ")
	w.Flags(flags)
	w.End()
	w.Untagged()
	w.Number(uint32(len(sel.view)))
	w.Atom(" EXISTS")
	w.End()
	unseen := uint32(snap.FirstUnseen)
	if !c.rev2 {
		sel.writeRecent(w)
		if unseen != 0 && !c.uidOnly {
			w.Status("", imap.StatusResponseTypeOK, "UNSEEN "+itoa(unseen), "First unseen")
		}
	}
	if a.ReadOnly {
		w.Status("", imap.StatusResponseTypeOK, "PERMANENTFLAGS ()", "No permanent flags permitted")
	} else {
		perm := flags
		if len(snap.Keywords) < maxKeywords {
			perm = append(perm, imap.FlagWildcard)
		}
		w.Status("", imap.StatusResponseTypeOK, "PERMANENTFLAGS "+flagList(perm), "Flags permitted")
	}
	w.Status("", imap.StatusResponseTypeOK, "UIDVALIDITY "+itoa(snap.UIDValidity), "UIDs valid")
	w.Status("", imap.StatusResponseTypeOK, "UIDNEXT "+itoa(snap.UIDNext), "Predicted next UID")
	// Modification sequences are kept for every folder (RFC 7162
	// section 3.1.2.1).
	w.Status("", imap.StatusResponseTypeOK, "HIGHESTMODSEQ "+itoa(snap.HighestModSeq), "Highest")
	if snap.MailboxID != "" {
		w.Status("", imap.StatusResponseTypeOK, "MAILBOXID ("+snap.MailboxID+")", "Ok") // RFC 8474
	}
	if c.rev2 {
		// RFC 9051 section 6.3.2: the mailbox's name as LIST gives it.
		w.Untagged()
		w.Atom(`LIST () "` + string(delim) + `" `)
		w.Mailbox(s.srv.namespace().out(f.Name()))
		w.End()
	}
	if q := a.QResync; q != nil && q.UIDValidity == snap.UIDValidity {
		if err := s.resync(w, q, snap.UIDNext); err != nil {
			return okStatus{}, err
		}
	}
	if a.ReadOnly {
		return okStatus{code: "READ-ONLY", text: cmd.Name + " completed"}, nil
	}
	return okStatus{code: "READ-WRITE", text: cmd.Name + " completed"}, nil
}

// announceKeywords sends FLAGS, and PERMANENTFLAGS when read-write, before
// a FETCH that shows keywords the client has not been sent yet (a STORE,
// COPY or another session added them): RFC 3501 section 7.2.6 has the
// client record FLAGS, so the flags a message shows are always in it.
func (sel *selection) announceKeywords(w *imapwire.Writer, flags []string) {
	added := false
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			continue
		}
		if !slices.ContainsFunc(sel.keywords, func(k string) bool { return strings.EqualFold(k, f) }) {
			sel.keywords = append(sel.keywords, f)
			added = true
		}
	}
	if !added {
		return
	}
	all := append(slices.Clone(systemFlags), keywordFlags(sel.keywords)...)
	w.Untagged()
	w.Atom("FLAGS ")
	w.Flags(all)
	w.End()
	if !sel.readOnly {
		perm := all
		if len(sel.keywords) < maxKeywords {
			perm = append(perm, imap.FlagWildcard)
		}
		w.Status("", imap.StatusResponseTypeOK, "PERMANENTFLAGS "+flagList(perm), "Flags permitted")
	}
}

func keywordFlags(kws []string) []imap.Flag {
	out := make([]imap.Flag, len(kws))
	for i, k := range kws {
		out[i] = imap.Flag(k)
	}
	return out
}

// flagList is flags as a parenthesized list.
func flagList(flags []imap.Flag) string {
	b := []byte{'('}
	for i, f := range flags {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, f...)
	}
	return string(append(b, ')'))
}

// cmdClose serves CLOSE (which expunges, unless EXAMINEd) and UNSELECT.
func (c *conn) cmdClose(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	if cmd.Name == "CLOSE" && !s.sel.readOnly {
		if _, err := s.expunge(nil); err != nil {
			return okStatus{}, err
		}
	}
	s.unselect()
	c.state = stateAuth
	return okStatus{}, nil
}

func (s *session) unselect() {
	s.mu.Lock()
	sel := s.sel
	s.sel = nil
	s.mu.Unlock()
	if sel == nil {
		return
	}
	sel.mb.mu.Lock()
	delete(sel.mb.sessions, sel)
	sel.mb.mu.Unlock()
	s.srv.releaseMailbox(sel.mb)
}

// poll writes what changed in the selected mailbox since the client was
// last told: EXPUNGE (when allowExpunge; RFC 9051 section 7.5.1 forbids
// it during FETCH, STORE and SEARCH), EXISTS and flag changes.
func (s *session) poll(w *imapwire.Writer, allowExpunge bool) error {
	condstore := s.nc.condstore
	sel := s.sel
	mb := sel.mb
	mb.mu.Lock()
	cur := mb.uids
	var changed []uint32
	for u := range sel.flags {
		changed = append(changed, u)
	}
	sel.flags = nil
	mb.mu.Unlock()

	view := sel.view
	gone, added, below := diffView(view, cur)
	switch {
	case allowExpunge:
		if below {
			// A message appeared below UIDs the client knows (another
			// process renumbered the folder): sequence numbers only grow
			// at the end, so those above it go and come back.
			gone = gone[:0]
			low := added[0]
			for i, u := range view {
				if _, found := slices.BinarySearch(cur, u); !found || u > low {
					gone = append(gone, i)
				}
			}
		}
		if (s.nc.qresync || s.nc.uidOnly) && len(gone) > 0 {
			// RFC 7162 section 3.2.10 and RFC 9586 section 3.4: VANISHED
			// in place of EXPUNGE.
			var uids imap.UIDSet
			for _, i := range gone {
				uids.AddNum(imap.UID(view[i]))
			}
			w.Untagged()
			w.Atom("VANISHED ")
			w.NumSet(uids)
			w.End()
		} else {
			for i := len(gone) - 1; i >= 0; i-- {
				w.Untagged()
				w.Number(uint32(gone[i] + 1))
				w.Atom(" EXPUNGE")
				w.End()
			}
		}
		goneRecent := false
		for _, i := range gone {
			goneRecent = goneRecent || sel.isRecent(view[i])
		}
		announced := len(cur) > len(view)-len(gone)
		if announced {
			if err := s.announceNew(w, cur, added); err != nil {
				return err
			}
		}
		sel.view = cur
		if goneRecent && !announced && !s.nc.rev2 {
			// The session's \Recent count fell with the expunges: say
			// so, as Dovecot does, so that the RECENT counts a client
			// holds for its sessions never add up to more than the
			// mailbox's messages.
			sel.writeRecent(w)
		}
	case len(gone) == 0 && !below:
		if len(added) > 0 {
			if err := s.announceNew(w, cur, added); err != nil {
				return err
			}
		}
		sel.view = cur
		// Otherwise new messages wait with the expunges: the client's
		// view stays a version of the mailbox's.
	}
	if len(changed) == 0 {
		return nil
	}
	slices.Sort(changed)
	for _, uid := range changed {
		i, found := slices.BinarySearch(sel.view, uid)
		if _, known := slices.BinarySearch(view, uid); !found || !known {
			continue // expunged, or new to the client, which fetches it
		}
		m, err := sel.folder.Message(s.ctx, uid)
		if err != nil {
			continue
		}
		m.Recent = sel.isRecent(uid)
		sel.announceKeywords(w, m.Flags)
		s.nc.fetchStart(w, uint32(i+1), uid)
		if !s.nc.uidOnly {
			w.Atom("UID ")
			w.Number(uid)
			w.SP()
		}
		w.Atom("FLAGS ")
		w.Flags(imapFlags(&m, s.nc.rev2))
		if condstore {
			w.Atom(" MODSEQ (")
			w.Number64(m.ModSeq)
			w.Atom(")")
		}
		w.Atom(")")
		w.End()
	}
	return nil
}

// reported drops pending flag changes of refs: the client is about to be
// sent their flags, read after this call.
func (sel *selection) reported(refs []ref) {
	sel.mb.mu.Lock()
	defer sel.mb.mu.Unlock()
	if len(sel.flags) == 0 {
		return
	}
	for _, r := range refs {
		delete(sel.flags, r.uid)
	}
}

// announceNew tells the client of the messages added to its view: EXISTS
// and, to an IMAP4rev1 client, RECENT after the session has taken its
// share of \Recent among them.
func (s *session) announceNew(w *imapwire.Writer, cur, added []uint32) error {
	writeExists(w, len(cur))
	sel := s.sel
	var msgs []maildir.Message
	if sel.readOnly {
		var err error
		if msgs, err = sel.folder.Messages(s.ctx, added); err != nil {
			return mapError(err)
		}
	}
	if err := sel.takeRecent(s, msgs); err != nil {
		return mapError(err)
	}
	sel.view = cur
	if !s.nc.rev2 {
		sel.writeRecent(w)
	}
	return nil
}

// takeRecent adds to the session's \Recent messages: read-write, those
// it claims from the folder (no other session gets them); read-only,
// those of msgs that no session has claimed.
func (sel *selection) takeRecent(s *session, msgs []maildir.Message) error {
	var uids []uint32
	var err error
	if sel.readOnly {
		for i := range msgs {
			if msgs[i].Recent {
				uids = append(uids, msgs[i].UID)
			}
		}
	} else {
		uids, err = sel.folder.ClaimRecent(s.ctx)
	}
	sel.addRecent(uids)
	return err
}

// addRecent adds uids to the session's \Recent messages.
func (sel *selection) addRecent(uids []uint32) {
	if len(uids) > 0 {
		sel.recent = append(sel.recent, uids...)
		slices.Sort(sel.recent)
		sel.recent = slices.Compact(sel.recent)
	}
}

func (sel *selection) isRecent(uid uint32) bool {
	_, ok := slices.BinarySearch(sel.recent, uid)
	return ok
}

// writeRecent sends RECENT: how many messages of the client's view are
// \Recent for this session.
func (sel *selection) writeRecent(w *imapwire.Writer) {
	var n uint32
	for _, u := range sel.recent {
		if _, found := slices.BinarySearch(sel.view, u); found {
			n++
		}
	}
	w.Untagged()
	w.Number(n)
	w.Atom(" RECENT")
	w.End()
}

func writeExists(w *imapwire.Writer, n int) {
	w.Untagged()
	w.Number(uint32(n))
	w.Atom(" EXISTS")
	w.End()
}

// diffView compares the client's view with the mailbox's UIDs (both
// ascending): the indices of view no longer in cur, the UIDs of cur not
// in view, and whether one of those is below a UID of view.
func diffView(view, cur []uint32) (gone []int, added []uint32, below bool) {
	if len(view) == len(cur) && (len(view) == 0 || &view[0] == &cur[0]) {
		return nil, nil, false // the same slice: nothing changed
	}
	i, j := 0, 0
	for i < len(view) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(view) && view[i] < cur[j]):
			gone = append(gone, i)
			i++
		case i == len(view) || cur[j] < view[i]:
			if i < len(view) {
				below = true
			}
			added = append(added, cur[j])
			j++
		default:
			i++
			j++
		}
	}
	return gone, added, below
}

// resolve turns a sequence or UID set into the messages of the client's
// view, in order, each once.
func (sel *selection) resolve(numSet imap.NumSet) []ref {
	if imap.IsSearchRes(numSet) {
		numSet = sel.searchRes
	}
	view := sel.view
	n := uint32(len(view))
	var out []ref
	switch set := numSet.(type) {
	case imap.SeqSet:
		ranges := make([][2]uint32, len(set))
		for i, r := range set {
			ranges[i] = [2]uint32{orMax(r.Start, n), orMax(r.Stop, n)}
		}
		for _, r := range mergeRanges(ranges) {
			for seq := r[0]; seq <= min(r[1], n) && seq != 0; seq++ {
				out = append(out, ref{seq, view[seq-1]})
				if seq == n {
					break
				}
			}
		}
	case imap.UIDSet:
		var last uint32
		if n > 0 {
			last = view[n-1]
		}
		ranges := make([][2]uint32, len(set))
		for i, r := range set {
			ranges[i] = [2]uint32{orMax(uint32(r.Start), last), orMax(uint32(r.Stop), last)}
		}
		for _, r := range mergeRanges(ranges) {
			lo := sort.Search(len(view), func(i int) bool { return view[i] >= r[0] })
			for i := lo; i < len(view) && view[i] <= r[1]; i++ {
				out = append(out, ref{uint32(i + 1), view[i]})
			}
		}
	}
	return out
}

// resolveAmong is resolve for the messages of uids (ascending) only.
func (sel *selection) resolveAmong(numSet imap.NumSet, uids []uint32) []ref {
	if imap.IsSearchRes(numSet) {
		numSet = sel.searchRes
	}
	view := sel.view
	n := uint32(len(view))
	var last uint32
	if n > 0 {
		last = view[n-1]
	}
	var seqs imap.SeqSet
	var uidSet imap.UIDSet
	switch set := numSet.(type) {
	case imap.SeqSet:
		seqs = staticSeqSet(set, n)
	case imap.UIDSet:
		uidSet = staticUIDSet(set, last)
	}
	var out []ref
	for _, uid := range uids {
		i, found := slices.BinarySearch(view, uid)
		if !found {
			continue
		}
		seq := uint32(i + 1)
		if seqs != nil {
			found = seqs.Contains(seq)
		} else {
			found = uidSet.Contains(imap.UID(uid))
		}
		if found {
			out = append(out, ref{seq, uid})
		}
	}
	return out
}

// mergeRanges orders ranges (each made low to high) and merges those
// that overlap or touch.
func mergeRanges(ranges [][2]uint32) [][2]uint32 {
	for i, r := range ranges {
		if r[0] > r[1] {
			ranges[i] = [2]uint32{r[1], r[0]}
		}
	}
	slices.SortFunc(ranges, func(a, b [2]uint32) int { return int(int64(a[0]) - int64(b[0])) })
	out := ranges[:0]
	for _, r := range ranges {
		if k := len(out) - 1; k >= 0 && uint64(r[0]) <= uint64(out[k][1])+1 {
			out[k][1] = max(out[k][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}

func orMax(v, max uint32) uint32 {
	if v == 0 {
		return max
	}
	return v
}

func refUIDs(refs []ref) []uint32 {
	out := make([]uint32, len(refs))
	for i, r := range refs {
		out[i] = r.uid
	}
	return out
}

// cmdExpunge serves EXPUNGE and UID EXPUNGE; the EXPUNGE responses go
// out with the mailbox's other news.
func (c *conn) cmdExpunge(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	if s.sel.readOnly {
		return okStatus{}, errReadOnly
	}
	var uids *imap.UIDSet
	if cmd.UID {
		set := cmd.Args.(*imapwire.Expunge).Set
		if imap.IsSearchRes(set) {
			set = s.sel.searchRes
		}
		uids = &set
	}
	_, err := s.expunge(uids)
	return okStatus{}, err
}

// expunge removes the messages marked \Deleted (of uids, if not nil).
func (s *session) expunge(uids *imap.UIDSet) ([]uint32, error) {
	sel := s.sel
	snap, err := sel.folder.Snapshot(s.ctx)
	if err != nil {
		return nil, mapError(err)
	}
	var del []uint32
	for i := range snap.Messages {
		m := &snap.Messages[i]
		if m.HasFlag(maildir.FlagDeleted) && (uids == nil || uids.Contains(imap.UID(m.UID))) {
			del = append(del, m.UID)
		}
	}
	if len(del) == 0 {
		return nil, nil
	}
	sel.mb.mu.Lock()
	defer sel.mb.mu.Unlock()
	removed, err := sel.folder.Expunge(s.ctx, del)
	sel.mb.removeLocked(slices.Clone(removed))
	return removed, mapError(err)
}

// cmdStore serves STORE and UID STORE.
func (c *conn) cmdStore(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	a := cmd.Args.(*imapwire.Store)
	sel := s.sel
	if sel.readOnly {
		return okStatus{}, errReadOnly
	}
	refs := sel.resolve(a.Set)
	if len(refs) == 0 {
		return okStatus{}, nil
	}
	op := maildir.FlagsSet
	switch a.Flags.Op {
	case imap.StoreFlagsAdd:
		op = maildir.FlagsAdd
	case imap.StoreFlagsDel:
		op = maildir.FlagsRemove
	}
	var fl []string
	for _, f := range a.Flags.Flags {
		if f == `\Recent` {
			continue
		}
		fl = append(fl, string(f))
	}
	if a.HasUnchangedSince {
		c.enableCondStore() // a CONDSTORE-enabling command
	}
	if op != maildir.FlagsSet && len(fl) == 0 {
		if a.Flags.Silent {
			return okStatus{}, nil
		}
		return okStatus{}, s.fetchRefs(c.w, refs, &fetchItems{opts: imap.FetchOptions{Flags: true, UID: cmd.UID && !c.uidOnly, ModSeq: c.condstore}})
	}
	msgs, failed, err := s.storeFlags(refUIDs(refs), op, fl, a.UnchangedSince, a.HasUnchangedSince)
	if err != nil {
		return okStatus{}, err
	}
	byUID := make(map[uint32]*maildir.Message, len(msgs))
	for i := range msgs {
		byUID[msgs[i].UID] = &msgs[i]
	}
	w := c.w
	for _, r := range refs {
		m := byUID[r.uid]
		if m == nil || (a.Flags.Silent && !c.condstore) {
			continue
		}
		// With .SILENT a CONDSTORE client still learns the new modseq
		// (RFC 7162 section 3.1.3).
		if !a.Flags.Silent {
			sel.announceKeywords(w, m.Flags)
		}
		c.fetchStart(w, r.seq, r.uid)
		if cmd.UID && !c.uidOnly {
			w.Atom("UID ")
			w.Number(r.uid)
			w.SP()
		}
		if !a.Flags.Silent {
			m.Recent = sel.isRecent(m.UID)
			w.Atom("FLAGS ")
			w.Flags(imapFlags(m, c.rev2))
			if c.condstore {
				w.SP()
			}
		}
		if c.condstore {
			w.Atom("MODSEQ (")
			w.Number64(m.ModSeq)
			w.Atom(")")
		}
		w.Atom(")")
		w.End()
	}
	if len(failed) > 0 {
		// RFC 7162 section 3.1.3: the messages changed since
		// UNCHANGEDSINCE, by sequence number or UID as the command.
		var set imap.NumSet
		if cmd.UID {
			var uids imap.UIDSet
			for _, u := range failed {
				uids.AddNum(imap.UID(u))
			}
			set = uids
		} else {
			var seqs imap.SeqSet
			for _, r := range refs {
				if slices.Contains(failed, r.uid) {
					seqs.AddNum(r.seq)
				}
			}
			set = seqs
		}
		return okStatus{code: "MODIFIED " + set.String(), text: "Conditional STORE failed for some messages"}, nil
	}
	return okStatus{}, nil
}

// storeFlags changes flags and tells the other sessions, holding the
// view's lock so that maildir's event for the change is recognised as
// already announced.
// With cond, only messages unchanged since unchangedSince change
// (CONDSTORE); the others come back in failed.
func (s *session) storeFlags(uids []uint32, op maildir.FlagOp, flags []string, unchangedSince uint64, cond bool) (msgs []maildir.Message, failed []uint32, err error) {
	sel := s.sel
	sel.mb.mu.Lock()
	defer sel.mb.mu.Unlock()
	if cond {
		msgs, failed, err = sel.folder.StoreFlagsIf(s.ctx, uids, op, flags, unchangedSince)
	} else {
		msgs, err = sel.folder.StoreFlags(s.ctx, uids, op, flags)
	}
	if err != nil {
		return nil, nil, mapError(err)
	}
	for i := range msgs {
		sel.mb.storedLocked(&msgs[i], sel)
	}
	return msgs, failed, nil
}

// destFolder opens the target of COPY, MOVE or APPEND, with TRYCREATE
// when it is missing.
func (s *session) destFolder(name string) (*maildir.Folder, error) {
	f, err := s.md.Folder(s.ctx, name)
	if err != nil {
		if isNoFolder(err) {
			return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"}
		}
		return nil, folderError(err)
	}
	return f, nil
}

// cmdCopy serves COPY and UID COPY with UIDPLUS's COPYUID.
func (c *conn) cmdCopy(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	a := cmd.Args.(*imapwire.Copy)
	refs := s.sel.resolve(a.Set)
	df, err := s.destFolder(a.Mailbox)
	if err != nil {
		return okStatus{}, err
	}
	if len(refs) == 0 {
		return okStatus{}, nil
	}
	res, err := s.sel.folder.Copy(s.ctx, refUIDs(refs), df)
	if err != nil {
		return okStatus{}, mapError(err)
	}
	s.srv.refreshMailbox(s.ctx, s.md.Path(), df.Name())
	s.moved(s.sel.folder.Name(), df, res.Dest)
	return okStatus{code: copyUID(res)}, nil
}

// moved tells Options.Moved of copies made in df.
func (s *session) moved(from string, df *maildir.Folder, uids []uint32) {
	if s.srv.opts.Moved == nil || len(uids) == 0 {
		return
	}
	files := make([]*os.File, 0, len(uids))
	for _, uid := range uids {
		f, _, err := df.Open(s.ctx, uid)
		if err != nil {
			s.srv.log.Warn("moved message not readable", "user", s.user.Address, "folder", df.Name(), "uid", uid, "err", err)
			continue
		}
		files = append(files, f)
	}
	s.srv.opts.Moved(s.user.Address, from, df.Name(), files)
}

// copyUID is UIDPLUS's COPYUID response code.
func copyUID(res maildir.CopyResult) string {
	var src, dst imap.UIDSet
	for i := range res.Source {
		src.AddNum(imap.UID(res.Source[i]))
		dst.AddNum(imap.UID(res.Dest[i]))
	}
	if len(src) == 0 {
		return ""
	}
	return "COPYUID " + itoa(res.UIDValidity) + " " + src.String() + " " + dst.String()
}

// cmdMove serves MOVE and UID MOVE: COPYUID, then the EXPUNGEs through
// the view like any other change.
func (c *conn) cmdMove(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	a := cmd.Args.(*imapwire.Copy)
	sel := s.sel
	if sel.readOnly {
		return okStatus{}, errReadOnly
	}
	refs := sel.resolve(a.Set)
	df, err := s.destFolder(a.Mailbox)
	if err != nil {
		return okStatus{}, err
	}
	if len(refs) == 0 {
		return okStatus{}, nil
	}
	sel.mb.mu.Lock()
	res, err := sel.folder.Move(s.ctx, refUIDs(refs), df)
	if err == nil {
		sel.mb.removeLocked(slices.Clone(res.Source))
	}
	sel.mb.mu.Unlock()
	if err != nil {
		return okStatus{}, mapError(err)
	}
	s.srv.refreshMailbox(s.ctx, s.md.Path(), df.Name())
	s.moved(sel.folder.Name(), df, res.Dest)
	if code := copyUID(res); code != "" {
		c.w.Status("", imap.StatusResponseTypeOK, code, "Moved")
	}
	return okStatus{}, nil
}

// staticSeqSet replaces "*" by max.
func staticSeqSet(set imap.SeqSet, max uint32) imap.SeqSet {
	out := make(imap.SeqSet, len(set))
	for i, r := range set {
		out[i] = imap.SeqRange{Start: orMax(r.Start, max), Stop: orMax(r.Stop, max)}
		if out[i].Start > out[i].Stop {
			out[i].Start, out[i].Stop = out[i].Stop, out[i].Start
		}
	}
	return out
}

// staticUIDSet replaces "*" by max.
func staticUIDSet(set imap.UIDSet, max uint32) imap.UIDSet {
	out := make(imap.UIDSet, len(set))
	for i, r := range set {
		out[i] = imap.UIDRange{Start: imap.UID(orMax(uint32(r.Start), max)), Stop: imap.UID(orMax(uint32(r.Stop), max))}
		if out[i].Start > out[i].Stop {
			out[i].Start, out[i].Stop = out[i].Stop, out[i].Start
		}
	}
	return out
}

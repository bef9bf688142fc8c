package imap

import (
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/mailagent/mailagent/maildir"
)

// selection is a session's selected mailbox.
type selection struct {
	mb        *mailbox
	folder    *maildir.Folder // the session's own handle
	tracker   *imapserver.SessionTracker
	readOnly  bool
	searchRes imap.UIDSet // SEARCHRES's "$"
}

// ref is one message a command addresses: its sequence number in the
// client's view, its index in the shared view and its UID.
type ref struct {
	seq, idx, uid uint32
}

var errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: "READ-ONLY", Text: "Mailbox is read-only"}

var systemFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}

// maxKeywords is how many keywords dovecot-keywords can name per folder.
const maxKeywords = 26

// Select serves SELECT and EXAMINE from maildir's index.
func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.unselect()
	f, err := s.md.Folder(s.ctx, name)
	if err != nil {
		return nil, folderError(err)
	}
	mb, snap, err := s.srv.openMailbox(s.ctx, s.md.Path(), f.Name())
	if err != nil {
		return nil, mapError(err)
	}
	if snap == nil {
		if snap, err = f.Snapshot(s.ctx); err != nil {
			s.srv.releaseMailbox(mb)
			return nil, mapError(err)
		}
	}
	mb.mu.Lock()
	mb.syncLocked(snap)
	tr := mb.tracker.NewSession()
	mb.mu.Unlock()
	s.mu.Lock()
	s.sel = &selection{mb: mb, folder: f, tracker: tr, readOnly: options.ReadOnly}
	s.mu.Unlock()

	data := &imap.SelectData{
		NumMessages: uint32(len(snap.Messages)),
		UIDNext:     imap.UID(snap.UIDNext),
		UIDValidity: snap.UIDValidity,
	}
	data.Flags = append(slices.Clone(systemFlags), keywordFlags(snap.Keywords)...)
	if !options.ReadOnly {
		data.PermanentFlags = slices.Clone(data.Flags)
		if len(snap.Keywords) < maxKeywords {
			data.PermanentFlags = append(data.PermanentFlags, imap.FlagWildcard)
		}
	}
	for i := range snap.Messages {
		m := &snap.Messages[i]
		if data.FirstUnseenSeqNum == 0 && !m.HasFlag(maildir.FlagSeen) {
			data.FirstUnseenSeqNum = uint32(i + 1)
		}
		if m.Recent {
			data.NumRecent++
		}
	}
	return data, nil
}

func keywordFlags(kws []string) []imap.Flag {
	out := make([]imap.Flag, len(kws))
	for i, k := range kws {
		out[i] = imap.Flag(k)
	}
	return out
}

// Unselect serves UNSELECT and the end of CLOSE.
func (s *session) Unselect() error {
	s.unselect()
	return nil
}

func (s *session) unselect() {
	s.mu.Lock()
	sel := s.sel
	s.sel = nil
	s.mu.Unlock()
	if sel == nil {
		return
	}
	sel.tracker.Close()
	s.srv.releaseMailbox(sel.mb)
}

// Poll writes the updates pending for the session, in as few writes as
// they fit.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.sel == nil {
		return nil
	}
	s.nc.cork()
	err := s.sel.tracker.Poll(w, allowExpunge)
	if uerr := s.nc.uncork(); err == nil {
		err = uerr
	}
	return err
}

// Idle writes updates as they happen until stop is closed.
// imapserver runs it on its own goroutine, which may outlive the command
// when the connection breaks; hence the lock.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.mu.Lock()
	sel := s.sel
	s.mu.Unlock()
	if sel == nil {
		<-stop
		return nil
	}
	// Updates queued before IDLE began go out first.
	if err := sel.tracker.Poll(w, true); err != nil {
		return err
	}
	return sel.tracker.Idle(w, stop)
}

// resolve turns a sequence or UID set into the messages of the client's
// view, in order.
func (sel *selection) resolve(numSet imap.NumSet) []ref {
	if imap.IsSearchRes(numSet) {
		numSet = sel.searchRes
	}
	mb := sel.mb
	mb.mu.Lock()
	defer mb.mu.Unlock()
	n := uint32(len(mb.uids))
	var out []ref
	switch set := numSet.(type) {
	case imap.SeqSet:
		var max uint32
		for i := n; i > 0; i-- {
			if c := sel.tracker.EncodeSeqNum(i); c != 0 {
				max = c
				break
			}
		}
		set = staticSeqSet(set, max)
		for i := uint32(1); i <= n; i++ {
			c := sel.tracker.EncodeSeqNum(i)
			if c != 0 && set.Contains(c) {
				out = append(out, ref{c, i - 1, mb.uids[i-1]})
			}
		}
	case imap.UIDSet:
		var max uint32
		if n > 0 {
			max = mb.uids[n-1]
		}
		set = staticUIDSet(set, max)
		for i := uint32(1); i <= n; i++ {
			uid := mb.uids[i-1]
			if !set.Contains(imap.UID(uid)) {
				continue
			}
			if c := sel.tracker.EncodeSeqNum(i); c != 0 {
				out = append(out, ref{c, i - 1, uid})
			}
		}
	}
	return out
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

// Expunge serves EXPUNGE, UID EXPUNGE and CLOSE. In a read-only mailbox
// it does nothing, as CLOSE after EXAMINE must not expunge.
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	sel := s.sel
	if sel.readOnly {
		return nil
	}
	snap, err := sel.folder.Snapshot(s.ctx)
	if err != nil {
		return mapError(err)
	}
	var del []uint32
	for i := range snap.Messages {
		m := &snap.Messages[i]
		if m.HasFlag(maildir.FlagDeleted) && (uids == nil || uids.Contains(imap.UID(m.UID))) {
			del = append(del, m.UID)
		}
	}
	if len(del) == 0 {
		return nil
	}
	sel.mb.mu.Lock()
	defer sel.mb.mu.Unlock()
	removed, err := sel.folder.Expunge(s.ctx, del)
	sel.mb.removeLocked(removed)
	return mapError(err)
}

// Store serves STORE and UID STORE.
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	refs := sel.resolve(numSet)
	if len(refs) == 0 {
		return nil
	}
	op := maildir.FlagsSet
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = maildir.FlagsAdd
	case imap.StoreFlagsDel:
		op = maildir.FlagsRemove
	}
	var fl []string
	for _, f := range flags.Flags {
		if f == `\Recent` || f == `\recent` {
			continue
		}
		fl = append(fl, string(f))
	}
	if op != maildir.FlagsSet && len(fl) == 0 {
		return s.storeResponses(w, numSet, refs, flags.Silent)
	}
	msgs, err := s.storeFlags(refUIDs(refs), op, fl)
	if err != nil {
		return err
	}
	if flags.Silent {
		return nil
	}
	s.nc.cork()
	defer s.nc.uncork()
	_, isUID := numSet.(imap.UIDSet)
	byUID := make(map[uint32]*maildir.Message, len(msgs))
	for i := range msgs {
		byUID[msgs[i].UID] = &msgs[i]
	}
	for _, r := range refs {
		m := byUID[r.uid]
		if m == nil {
			continue
		}
		rw := w.CreateMessage(r.seq)
		if isUID {
			rw.WriteUID(imap.UID(r.uid))
		}
		rw.WriteFlags(imapFlags(m))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// storeResponses answers a STORE that changes nothing with the current
// flags.
func (s *session) storeResponses(w *imapserver.FetchWriter, numSet imap.NumSet, refs []ref, silent bool) error {
	if silent {
		return nil
	}
	return s.fetchRefs(w, refs, &imap.FetchOptions{Flags: true, UID: isUIDSet(numSet)})
}

func isUIDSet(numSet imap.NumSet) bool {
	_, ok := numSet.(imap.UIDSet)
	return ok
}

// storeFlags changes flags and tells the other sessions, holding the
// view's lock so that maildir's event for the change is recognised as
// already announced.
func (s *session) storeFlags(uids []uint32, op maildir.FlagOp, flags []string) ([]maildir.Message, error) {
	sel := s.sel
	sel.mb.mu.Lock()
	defer sel.mb.mu.Unlock()
	msgs, err := sel.folder.StoreFlags(s.ctx, uids, op, flags)
	if err != nil {
		return nil, mapError(err)
	}
	for i := range msgs {
		sel.mb.storedLocked(&msgs[i], sel.tracker)
	}
	return msgs, nil
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

// Copy serves COPY and UID COPY with UIDPLUS's COPYUID.
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	refs := s.sel.resolve(numSet)
	df, err := s.destFolder(dest)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, nil
	}
	res, err := s.sel.folder.Copy(s.ctx, refUIDs(refs), df)
	if err != nil {
		return nil, mapError(err)
	}
	s.srv.refreshMailbox(s.ctx, s.md.Path(), df.Name())
	return copyData(res), nil
}

func copyData(res maildir.CopyResult) *imap.CopyData {
	d := &imap.CopyData{UIDValidity: res.UIDValidity}
	for i := range res.Source {
		d.SourceUIDs.AddNum(imap.UID(res.Source[i]))
		d.DestUIDs.AddNum(imap.UID(res.Dest[i]))
	}
	return d
}

// Move serves MOVE and UID MOVE: COPYUID, then the EXPUNGEs through the
// view like any other change.
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	refs := sel.resolve(numSet)
	df, err := s.destFolder(dest)
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		return nil
	}
	sel.mb.mu.Lock()
	res, err := sel.folder.Move(s.ctx, refUIDs(refs), df)
	if err == nil {
		sel.mb.removeLocked(slices.Clone(res.Source))
	}
	sel.mb.mu.Unlock()
	if err != nil {
		return mapError(err)
	}
	s.srv.refreshMailbox(s.ctx, s.md.Path(), df.Name())
	if len(res.Source) == 0 {
		return nil
	}
	return w.WriteCopyData(copyData(res))
}

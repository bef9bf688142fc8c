package imap

import (
	"errors"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/maildir"
)

const delim = maildir.Delimiter

func isNoFolder(err error) bool { return errors.Is(err, maildir.ErrNoFolder) }

// mailboxName validates a name from the client and returns maildir's
// canonical form; a trailing delimiter is dropped (RFC 3501 6.3.3).
func mailboxName(name string) (string, error) {
	name = strings.TrimSuffix(name, string(delim))
	n, err := maildir.CheckName(name)
	if err != nil {
		return "", folderError(err)
	}
	return n, nil
}

// folderError maps an error of a folder lookup or change: a name the
// store refuses (it could leave the user's Maildir, or Dovecot could not
// store it) is NO [CANNOT] with the reason, the rest as mapError does.
func folderError(err error) error {
	var ne *maildir.NameError
	if errors.As(err, &ne) && imapwire.Undecodable(ne.Name) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: imapwire.UndecodableText}
	}
	if errors.As(err, &ne) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid mailbox name: " + ne.Reason}
	}
	return mapError(err)
}

// cmdCreate serves CREATE.
func (c *conn) cmdCreate(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	a := cmd.Args.(*imapwire.Create)
	n, err := mailboxName(a.Mailbox)
	if err != nil {
		return okStatus{}, err
	}
	if n == "INBOX" {
		return okStatus{}, mapError(maildir.ErrFolderExists)
	}
	use, err := specialUseOf(a.SpecialUse)
	if err != nil {
		return okStatus{}, err
	}
	if err := s.md.CreateFolder(s.ctx, n); err != nil {
		return okStatus{}, folderError(err)
	}
	if err := s.giveSpecialUse(n, use); err != nil {
		return okStatus{}, err
	}
	if id, err := s.mailboxID(n); err == nil && id != "" {
		return okStatus{code: "MAILBOXID (" + id + ")"}, nil // RFC 8474
	}
	return okStatus{}, nil
}

// cmdDelete serves DELETE. Children stay, reachable by name, as RFC 3501
// 6.3.4 allows.
func (c *conn) cmdDelete(cmd *imapwire.Command) (okStatus, error) {
	return okStatus{}, c.sess.deleteFolder(cmd.Args.(*imapwire.Mailbox).Name)
}

func (s *session) deleteFolder(name string) error {
	n, err := mailboxName(name)
	if err != nil {
		return err
	}
	if s.sel != nil && s.sel.folder.Name() == n {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeInUse, Text: "Mailbox is selected"}
	}
	return folderError(s.md.DeleteFolder(s.ctx, n))
}

// cmdRename serves RENAME.
func (c *conn) cmdRename(cmd *imapwire.Command) (okStatus, error) {
	a := cmd.Args.(*imapwire.Rename)
	return okStatus{}, c.sess.rename(a.From, a.To)
}

// rename renames a folder with its children following. Renaming INBOX
// moves its messages to the new folder and leaves INBOX empty (RFC 3501
// 6.3.5).
func (s *session) rename(oldName, newName string) error {
	from, err := mailboxName(oldName)
	if err != nil {
		return err
	}
	to, err := mailboxName(newName)
	if err != nil {
		return err
	}
	if to == "INBOX" {
		return mapError(maildir.ErrFolderExists)
	}
	if from != "INBOX" {
		return folderError(s.md.RenameFolder(s.ctx, from, to))
	}
	if err := s.md.CreateFolder(s.ctx, to); err != nil {
		return mapError(err)
	}
	inbox, err := s.md.Folder(s.ctx, "INBOX")
	if err != nil {
		return mapError(err)
	}
	dest, err := s.md.Folder(s.ctx, to)
	if err != nil {
		return mapError(err)
	}
	snap, err := inbox.Snapshot(s.ctx)
	if err != nil {
		return mapError(err)
	}
	uids := make([]uint32, len(snap.Messages))
	for i := range snap.Messages {
		uids[i] = snap.Messages[i].UID
	}
	if len(uids) > 0 {
		if _, err := inbox.Move(s.ctx, uids, dest); err != nil {
			return mapError(err)
		}
	}
	s.srv.refreshMailbox(s.ctx, s.md.Path(), "INBOX")
	return nil
}

// cmdSubscribe serves SUBSCRIBE (the name need not exist) and
// UNSUBSCRIBE.
func (c *conn) cmdSubscribe(cmd *imapwire.Command) (okStatus, error) {
	n, err := mailboxName(cmd.Args.(*imapwire.Mailbox).Name)
	if err != nil {
		return okStatus{}, err
	}
	return okStatus{}, folderError(c.sess.md.Subscribe(c.sess.ctx, n, cmd.Name == "SUBSCRIBE"))
}

// listEntry is one name LIST may report.
type listEntry struct {
	maildir.FolderInfo
	exists bool
}

// cmdList serves LIST (with LIST-EXTENDED's selection and return
// options, LIST-STATUS and SPECIAL-USE) and LSUB.
func (c *conn) cmdList(cmd *imapwire.Command) (okStatus, error) {
	a := cmd.Args.(*imapwire.List)
	options := a.Options
	if a.Lsub {
		options.SelectSubscribed = true
	}
	w := &listWriter{w: c.w, lsub: a.Lsub}
	return okStatus{}, c.sess.list(w, a.Ref, a.Patterns, &options)
}

// listWriter writes LIST (or LSUB) responses, with LIST-STATUS's STATUS
// after each.
type listWriter struct {
	w    *imapwire.Writer
	lsub bool
}

func (lw *listWriter) WriteList(d *imap.ListData) error {
	w := lw.w
	w.Untagged()
	if lw.lsub {
		w.Atom("LSUB (")
	} else {
		w.Atom("LIST (")
	}
	sep := false
	for _, a := range d.Attrs {
		if lw.lsub && a == imap.MailboxAttrSubscribed {
			continue
		}
		if lw.lsub && a == imap.MailboxAttrNonExistent {
			a = imap.MailboxAttrNoSelect // LSUB predates \NonExistent
		}
		if sep {
			w.SP()
		}
		sep = true
		w.Atom(string(a))
	}
	w.Atom(`) "` + string(delim) + `" `)
	w.Mailbox(d.Mailbox)
	if d.ChildInfo != nil && d.ChildInfo.Subscribed && !lw.lsub {
		w.Atom(` ("CHILDINFO" ("SUBSCRIBED"))`)
	}
	w.End()
	if d.Status != nil {
		writeStatus(w, d.Status, "")
	}
	return nil
}

func (s *session) list(w *listWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 1 && patterns[0] == "" {
		// RFC 3501 6.3.8: the hierarchy delimiter and root.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim, Mailbox: ""})
	}
	folders, err := s.md.Folders(s.ctx)
	if err != nil {
		return mapError(err)
	}
	entries := make([]listEntry, 0, len(folders))
	known := make(map[string]bool, len(folders))
	for _, f := range folders {
		entries = append(entries, listEntry{f, !f.NonExistent})
		known[f.Name] = true
	}
	if options.SelectSubscribed {
		subs, err := s.md.Subscriptions(s.ctx)
		if err != nil {
			return mapError(err)
		}
		for _, n := range subs {
			if !known[n] {
				known[n] = true
				entries = append(entries, listEntry{maildir.FolderInfo{Name: n, Subscribed: true, NonExistent: true}, false})
			}
		}
		if w.lsub {
			// The parents of subscribed names, for LSUB's "%" rule below.
			for _, n := range subs {
				for i := strings.LastIndexByte(n, delim); i > 0; i = strings.LastIndexByte(n[:i], delim) {
					if !known[n[:i]] {
						known[n[:i]] = true
						entries = append(entries, listEntry{maildir.FolderInfo{Name: n[:i], NonExistent: true, HasChildren: true}, false})
					}
				}
			}
		}
	}
	// Runs of wildcards are made one once here rather than for each
	// name (wildMatch would again): a 50 KiB pattern of them costs
	// little more than a short one.
	ref, _ = squeezeWildcards(ref)
	patterns = slices.Clone(patterns)
	for i, p := range patterns {
		patterns[i], _ = squeezeWildcards(p)
	}
	ns := s.srv.namespace()
	for _, e := range entries {
		// Patterns match the names the client knows.
		name := ns.out(e.Name)
		if !matchAny(name, ref, patterns) {
			continue
		}
		if ns.prefix != "" && name == "INBOX" && len(folders) > 1 {
			e.HasChildren = true // the prefix's folders are below INBOX
		}
		d := &imap.ListData{Delim: delim, Mailbox: name}
		if w.lsub && !e.Subscribed {
			// RFC 3501 section 6.3.9: with "foo/bar" subscribed and
			// "foo" not, "%" must return foo flagged \Noselect.
			if s.hasUnmatchedSubscribedChild(entries, e.Name, ref, patterns) {
				if err := w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim, Mailbox: name}); err != nil {
					return err
				}
			}
			continue
		}
		if options.SelectSubscribed && !e.Subscribed {
			// RFC 5258 section 3: CHILDINFO for a parent whose
			// subscribed child the patterns do not return themselves.
			if !options.SelectRecursiveMatch || !s.hasUnmatchedSubscribedChild(entries, e.Name, ref, patterns) {
				continue
			}
			d.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if options.SelectSpecialUse && e.SpecialUse == "" {
			continue
		}
		if !e.exists {
			// \NonExistent implies \Noselect (RFC 5258 section 3),
			// so it goes alone, as Dovecot sends it.
			if !e.NonExistent || !e.HasChildren {
				d.Attrs = append(d.Attrs, imap.MailboxAttrNonExistent)
			} else {
				d.Attrs = append(d.Attrs, imap.MailboxAttrNoSelect)
			}
		}
		if e.HasChildren {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasChildren)
		} else {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if e.Subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			d.Attrs = append(d.Attrs, imap.MailboxAttrSubscribed)
		}
		if e.SpecialUse != "" {
			d.Attrs = append(d.Attrs, imap.MailboxAttr(e.SpecialUse))
		}
		if options.ReturnStatus != nil && e.exists {
			if st, err := s.status(e.Name, options.ReturnStatus); err == nil {
				d.Status = st
			}
		}
		if err := w.WriteList(d); err != nil {
			return err
		}
	}
	return nil
}

func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if matchList(name, delim, ref, p) {
			return true
		}
	}
	return false
}

// hasUnmatchedSubscribedChild reports whether a subscribed mailbox below
// name is not matched by the patterns itself.
func (s *session) hasUnmatchedSubscribedChild(entries []listEntry, name, ref string, patterns []string) bool {
	prefix := name + string(delim)
	ns := s.srv.namespace()
	for _, e := range entries {
		if e.Subscribed && strings.HasPrefix(e.Name, prefix) && !matchAny(ns.out(e.Name), ref, patterns) {
			return true
		}
	}
	return false
}

// cmdStatus serves STATUS (with STATUS=SIZE and APPENDLIMIT) from the
// index.
func (c *conn) cmdStatus(cmd *imapwire.Command) (okStatus, error) {
	a := cmd.Args.(*imapwire.Status)
	n, err := mailboxName(a.Mailbox)
	if err != nil {
		return okStatus{}, err
	}
	if a.Items.HighestModSeq {
		c.enableCondStore()
	}
	d, err := c.sess.status(n, &a.Items)
	if err != nil {
		return okStatus{}, err
	}
	mid := ""
	if a.MailboxID {
		if mid, err = c.sess.mailboxID(n); err != nil {
			return okStatus{}, err
		}
	}
	writeStatus(c.w, d, mid)
	return okStatus{}, nil
}

// writeStatus writes a STATUS response.
func writeStatus(w *imapwire.Writer, d *imap.StatusData, mailboxID string) {
	w.Untagged()
	w.Atom("STATUS ")
	w.Mailbox(d.Mailbox)
	w.Atom(" (")
	sep := ""
	num := func(name string, v uint64) {
		w.Atom(sep + name + " ")
		w.Number64(v)
		sep = " "
	}
	if d.NumMessages != nil {
		num("MESSAGES", uint64(*d.NumMessages))
	}
	if d.NumRecent != nil {
		num("RECENT", uint64(*d.NumRecent))
	}
	if d.UIDNext != 0 {
		num("UIDNEXT", uint64(d.UIDNext))
	}
	if d.UIDValidity != 0 {
		num("UIDVALIDITY", uint64(d.UIDValidity))
	}
	if d.NumUnseen != nil {
		num("UNSEEN", uint64(*d.NumUnseen))
	}
	if d.NumDeleted != nil {
		num("DELETED", uint64(*d.NumDeleted))
	}
	if d.Size != nil {
		num("SIZE", uint64(*d.Size))
	}
	if d.AppendLimit != nil {
		num("APPENDLIMIT", uint64(*d.AppendLimit))
	}
	if d.DeletedStorage != nil {
		num("DELETED-STORAGE", uint64(*d.DeletedStorage))
	}
	if d.HighestModSeq != 0 {
		num("HIGHESTMODSEQ", d.HighestModSeq)
	}
	if mailboxID != "" {
		w.Atom(sep + "MAILBOXID (" + mailboxID + ")")
	}
	w.Atom(")")
	w.End()
}

func (s *session) status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	f, err := s.md.Folder(s.ctx, name)
	if err != nil {
		return nil, folderError(err)
	}
	st, err := f.Status(s.ctx)
	if err != nil {
		return nil, mapError(err)
	}
	d := &imap.StatusData{Mailbox: s.srv.namespace().out(f.Name())}
	num := func(v int) *uint32 { n := uint32(v); return &n }
	if options.NumMessages {
		d.NumMessages = num(st.Messages)
	}
	if options.NumRecent {
		d.NumRecent = num(st.Recent)
	}
	if options.UIDNext {
		d.UIDNext = imap.UID(st.UIDNext)
	}
	if options.UIDValidity {
		d.UIDValidity = st.UIDValidity
	}
	if options.NumUnseen {
		d.NumUnseen = num(st.Unseen)
	}
	if options.NumDeleted {
		d.NumDeleted = num(st.Deleted)
	}
	if options.Size {
		size := st.VSize
		d.Size = &size
	}
	if options.AppendLimit {
		l := s.srv.opts.AppendLimit
		d.AppendLimit = &l
	}
	if options.HighestModSeq {
		d.HighestModSeq = st.HighestModSeq
	}
	if options.DeletedStorage {
		// QUOTA's DELETED-STORAGE (RFC 9208 section 4.2.1): what
		// EXPUNGE would free, in units of 1024 octets.
		snap, err := f.Snapshot(s.ctx)
		if err != nil {
			return nil, mapError(err)
		}
		var size int64
		for i := range snap.Messages {
			if snap.Messages[i].HasFlag(maildir.FlagDeleted) {
				size += snap.Messages[i].Size
			}
		}
		kib := (size + 1023) / 1024
		d.DeletedStorage = &kib
	}
	return d, nil
}

// cmdAppend serves APPEND, with MULTIAPPEND (RFC 3502): the messages
// are durable before the OK, with their UIDs in APPENDUID, and are
// stored all or none: a failure takes back those stored before it. A
// refused APPEND still reads its messages, which the client sends after
// non-synchronizing literals.
func (c *conn) cmdAppend(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	a := cmd.Args.(*imapwire.Append)
	f, err := s.appendTarget(a.Mailbox)
	if err != nil {
		return okStatus{}, c.endAppend(err)
	}
	var uids []uint32
	undo := func() {
		if len(uids) > 0 {
			if _, err := f.Expunge(s.ctx, uids); err != nil {
				c.srv.log.Error("imap: taking back a failed MULTIAPPEND", "session", c.id, "err", err)
			}
		}
	}
	for m := a.Message; m != nil; {
		uid, wireErr, err := c.storeMessage(f, m)
		if err != nil {
			undo()
			if wireErr != nil {
				return okStatus{}, c.appendRest(wireErr)
			}
			return okStatus{}, c.endAppend(mapError(err))
		}
		uids = append(uids, uid)
		if m, err = c.r.NextMessage(); err != nil {
			undo()
			return okStatus{}, c.appendRest(err)
		}
	}
	st, err := f.Status(s.ctx)
	if err != nil {
		return okStatus{}, mapError(err)
	}
	s.srv.refreshMailbox(s.ctx, s.md.Path(), f.Name())
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	return okStatus{code: "APPENDUID " + itoa(st.UIDValidity) + " " + set.String()}, nil
}

// appendTarget checks APPEND's mailbox and opens it.
func (s *session) appendTarget(name string) (*maildir.Folder, error) {
	n, err := mailboxName(name)
	if err != nil {
		return nil, err
	}
	return s.destFolder(n)
}

// endAppend reads what is left of a refused APPEND and returns err, or
// the reader's error when the command could not be read to its end.
func (c *conn) endAppend(err error) error {
	for {
		next, rerr := c.r.NextMessage()
		if rerr != nil {
			return c.appendRest(rerr)
		}
		if next == nil {
			return err
		}
	}
}

// appendRest answers an APPEND whose rest could not be read: a syntax
// error after a message (the parser's), or the connection's.
func (c *conn) appendRest(err error) error {
	var e *imapwire.Error
	if errors.As(err, &e) {
		if e.Close {
			c.bye = "Command or literal too large, closing the connection"
		}
		return &imap.Error{Type: e.Type, Code: e.Code, Text: e.Text}
	}
	c.state = stateLogout
	return errSilent
}

// mailboxID is a folder's OBJECTID MAILBOXID (RFC 8474).
func (s *session) mailboxID(name string) (string, error) {
	f, err := s.md.Folder(s.ctx, name)
	if err != nil {
		return "", folderError(err)
	}
	st, err := f.Status(s.ctx)
	if err != nil {
		return "", mapError(err)
	}
	return st.MailboxID, nil
}

package imap

import (
	"errors"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
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
	if errors.As(err, &ne) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid mailbox name: " + ne.Reason}
	}
	return mapError(err)
}

// Create serves CREATE.
func (s *session) Create(name string, options *imap.CreateOptions) error {
	n, err := mailboxName(name)
	if err != nil {
		return err
	}
	if n == "INBOX" {
		return mapError(maildir.ErrFolderExists)
	}
	return folderError(s.md.CreateFolder(s.ctx, n))
}

// Delete serves DELETE. Children stay, reachable by name, as RFC 3501
// 6.3.4 allows.
func (s *session) Delete(name string) error {
	n, err := mailboxName(name)
	if err != nil {
		return err
	}
	if s.sel != nil && s.sel.folder.Name() == n {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeInUse, Text: "Mailbox is selected"}
	}
	return folderError(s.md.DeleteFolder(s.ctx, n))
}

// Rename serves RENAME with the children following. Renaming INBOX moves
// its messages to the new folder and leaves INBOX empty (RFC 3501 6.3.5).
func (s *session) Rename(oldName, newName string, options *imap.RenameOptions) error {
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

// Subscribe serves SUBSCRIBE; the name need not exist.
func (s *session) Subscribe(name string) error {
	n, err := mailboxName(name)
	if err != nil {
		return err
	}
	return folderError(s.md.Subscribe(s.ctx, n, true))
}

// Unsubscribe serves UNSUBSCRIBE.
func (s *session) Unsubscribe(name string) error {
	n, err := mailboxName(name)
	if err != nil {
		return err
	}
	return folderError(s.md.Subscribe(s.ctx, n, false))
}

// listEntry is one name LIST may report.
type listEntry struct {
	maildir.FolderInfo
	exists bool
}

// List serves LIST (with LIST-EXTENDED's selection and return options,
// LIST-STATUS and SPECIAL-USE) and LSUB.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
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
	}
	for _, e := range entries {
		if !matchAny(e.Name, ref, patterns) {
			continue
		}
		d := &imap.ListData{Delim: delim, Mailbox: e.Name}
		if options.SelectSubscribed && !e.Subscribed {
			if !options.SelectRecursiveMatch || !s.hasSubscribedChild(entries, e.Name) {
				continue
			}
			d.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if options.SelectSpecialUse && e.SpecialUse == "" {
			continue
		}
		if !e.exists {
			d.Attrs = append(d.Attrs, imap.MailboxAttrNoSelect)
			if !e.NonExistent || !e.HasChildren {
				d.Attrs = append(d.Attrs, imap.MailboxAttrNonExistent)
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
		if imapserver.MatchList(name, delim, ref, p) {
			return true
		}
	}
	return false
}

func (s *session) hasSubscribedChild(entries []listEntry, name string) bool {
	prefix := name + string(delim)
	for _, e := range entries {
		if e.Subscribed && strings.HasPrefix(e.Name, prefix) {
			return true
		}
	}
	return false
}

// Status serves STATUS (with STATUS=SIZE and APPENDLIMIT) from the index.
func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	n, err := mailboxName(name)
	if err != nil {
		return nil, err
	}
	return s.status(n, options)
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
	d := &imap.StatusData{Mailbox: f.Name()}
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
	return d, nil
}

// Append serves APPEND: the message is durable before the OK, with its
// UID in APPENDUID.
func (s *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	n, err := mailboxName(name)
	if err != nil {
		return nil, err
	}
	f, err := s.destFolder(n)
	if err != nil {
		return nil, err
	}
	var flags []string
	for _, fl := range options.Flags {
		if !strings.EqualFold(string(fl), `\Recent`) {
			flags = append(flags, string(fl))
		}
	}
	uid, err := f.Append(s.ctx, r, flags, options.Time)
	if err != nil {
		return nil, mapError(err)
	}
	st, err := f.Status(s.ctx)
	if err != nil {
		return nil, mapError(err)
	}
	s.srv.refreshMailbox(s.ctx, s.md.Path(), f.Name())
	return &imap.AppendData{UID: imap.UID(uid), UIDValidity: st.UIDValidity}, nil
}

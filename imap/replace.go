package imap

import (
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
)

// cmdReplace serves REPLACE and UID REPLACE (RFC 8508): the new message
// is stored (durably) in its mailbox, then the message it replaces is
// expunged from the selected one; if the expunge fails, or the message
// is already gone, the new one is taken back and nothing changed. The
// new message's UID comes in an untagged OK [APPENDUID], before the
// EXISTS and the EXPUNGE (VANISHED under QRESYNC) that the mailbox's
// news then carry.
func (c *conn) cmdReplace(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	sel := s.sel
	a := cmd.Args.(*imapwire.Append)
	if !singleNumber(a.Replace) {
		return okStatus{}, c.endAppend(&imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "REPLACE takes one message"})
	}
	if sel.readOnly {
		return okStatus{}, c.endAppend(errReadOnly)
	}
	refs := sel.resolve(a.Replace)
	if len(refs) == 0 {
		if cmd.UID {
			return okStatus{}, c.endAppend(&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such message"})
		}
		return okStatus{}, c.endAppend(&imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Invalid message sequence number"})
	}
	old := refs[0].uid
	f, err := s.appendTarget(a.Mailbox)
	if err != nil {
		return okStatus{}, c.endAppend(err)
	}
	uid, wireErr, err := c.storeMessage(f, a.Message)
	if err != nil {
		if wireErr != nil {
			return okStatus{}, c.appendRest(wireErr)
		}
		return okStatus{}, c.endAppend(mapError(err))
	}
	takeBack := func() {
		if _, err := f.Expunge(s.ctx, []uint32{uid}); err != nil {
			c.srv.log.Error("imap: taking back a failed REPLACE", "session", c.id, "err", err)
		}
	}
	if next, err := c.r.NextMessage(); err != nil || next != nil {
		takeBack()
		if err == nil {
			err = &imapwire.Error{Type: imap.StatusResponseTypeBad, Text: "REPLACE takes one message"}
		}
		return okStatus{}, c.appendRest(err)
	}
	sel.mb.mu.Lock()
	removed, err := sel.folder.Expunge(s.ctx, []uint32{old})
	sel.mb.removeLocked(slices.Clone(removed))
	sel.mb.mu.Unlock()
	if err != nil || len(removed) == 0 {
		takeBack()
		if err != nil {
			return okStatus{}, mapError(err)
		}
		return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "The message to replace is gone"}
	}
	st, err := f.Status(s.ctx)
	if err != nil {
		return okStatus{}, mapError(err)
	}
	s.srv.refreshMailbox(s.ctx, s.md.Path(), f.Name())
	c.w.Status("", imap.StatusResponseTypeOK, "APPENDUID "+itoa(st.UIDValidity)+" "+itoa(uid), "Replacement Message ID")
	return okStatus{}, nil
}

// singleNumber reports whether set names one message: a number or "*".
func singleNumber(set imap.NumSet) bool {
	if imap.IsSearchRes(set) {
		return false // "$" is not a seq-number (RFC 8508 section 5)
	}
	switch set := set.(type) {
	case imap.SeqSet:
		return len(set) == 1 && set[0].Start == set[0].Stop
	case imap.UIDSet:
		return len(set) == 1 && set[0].Start == set[0].Stop
	}
	return false
}

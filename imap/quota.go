package imap

import (
	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/maildir"
)

// The user's Maildir has one quota root, named "" (RFC 9208): the limits
// of maildirsize, which the directory sets at login.

// cmdGetQuotaRoot serves GETQUOTAROOT: the mailbox's root and its
// usage.
func (c *conn) cmdGetQuotaRoot(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	name := cmd.Args.(*imapwire.Mailbox).Name
	n, err := mailboxName(name)
	if err != nil {
		return okStatus{}, err
	}
	f, err := s.md.Folder(s.ctx, n)
	if err != nil {
		return okStatus{}, folderError(err)
	}
	q, err := s.md.Quota(s.ctx)
	if err != nil {
		return okStatus{}, mapError(err)
	}
	w := c.w
	w.Untagged()
	w.Atom("QUOTAROOT ")
	w.Mailbox(s.srv.namespace().out(f.Name()))
	if limited(q) {
		w.Atom(` ""`)
	}
	w.End()
	if limited(q) {
		writeQuota(w, q)
	}
	return okStatus{}, nil
}

// cmdGetQuota serves GETQUOTA of the root "".
func (c *conn) cmdGetQuota(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	q, err := s.md.Quota(s.ctx)
	if err != nil {
		return okStatus{}, mapError(err)
	}
	if cmd.Args.(*imapwire.QuotaRoot).Root != "" || !limited(q) {
		return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such quota root"}
	}
	writeQuota(c.w, q)
	return okStatus{}, nil
}

// cmdSetQuota refuses SETQUOTA: limits come from the directory.
func (c *conn) cmdSetQuota(cmd *imapwire.Command) (okStatus, error) {
	return okStatus{}, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm, Text: "Quotas are set by the administrator"}
}

func limited(q maildir.QuotaUsage) bool { return q.Limit.Bytes > 0 || q.Limit.Messages > 0 }

// writeQuota writes the root's QUOTA response: STORAGE in units of
// 1024 octets, MESSAGE in messages, each only when limited.
func writeQuota(w *imapwire.Writer, q maildir.QuotaUsage) {
	w.Untagged()
	w.Atom(`QUOTA "" (`)
	sep := ""
	if q.Limit.Bytes > 0 {
		w.Atom("STORAGE ")
		w.Number64(uint64(max(q.Bytes, 0)+1023) / 1024)
		w.SP()
		w.Number64(uint64(q.Limit.Bytes) / 1024)
		sep = " "
	}
	if q.Limit.Messages > 0 {
		w.Atom(sep + "MESSAGE ")
		w.Number64(uint64(max(q.Messages, 0)))
		w.SP()
		w.Number64(uint64(q.Limit.Messages))
	}
	w.Atom(")")
	w.End()
}

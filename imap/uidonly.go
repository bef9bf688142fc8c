package imap

import (
	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
)

// UIDONLY (RFC 9586): once enabled, the connection uses no message
// sequence numbers in either direction. Commands that take them are
// refused BAD [UIDREQUIRED], FETCH responses become UIDFETCH, named by
// UID, and expunges are reported as VANISHED.

// errUIDRequired refuses sequence numbers under UIDONLY (RFC 9586
// section 3.2).
var errUIDRequired = &imap.Error{Type: imap.StatusResponseTypeBad, Code: "UIDREQUIRED", Text: "Message sequence numbers are not used after ENABLE UIDONLY"}

// uidRequired returns errUIDRequired for a command that uses sequence
// numbers: FETCH, STORE, SEARCH, SORT, THREAD, COPY, MOVE and REPLACE
// without UID, a search key naming sequence numbers, and QRESYNC's
// known sequence numbers.
func uidRequired(cmd *imapwire.Command) error {
	switch cmd.Name {
	case "FETCH", "STORE", "SEARCH", "SORT", "THREAD", "COPY", "MOVE", "REPLACE":
		if !cmd.UID {
			return errUIDRequired
		}
	}
	var criteria *imapwire.SearchCriteria
	switch a := cmd.Args.(type) {
	case *imapwire.Search:
		criteria = a.Criteria
	case *imapwire.Sort:
		criteria = a.Criteria
	case *imapwire.Thread:
		criteria = a.Criteria
	case *imapwire.Select:
		if a.QResync != nil && a.QResync.SeqMatch != nil {
			return errUIDRequired
		}
	}
	if criteria != nil && namesSeqNums(criteria) {
		return errUIDRequired
	}
	return nil
}

// namesSeqNums reports whether a search key, or one nested in it, is a
// sequence set.
func namesSeqNums(c *imapwire.SearchCriteria) bool {
	return c.Walk(func(c *imapwire.SearchCriteria) bool { return len(c.SeqNum) > 0 })
}

// fetchStart begins an untagged FETCH response for the message seq
// (UID uid): "* seq FETCH (", or under UIDONLY "* uid UIDFETCH (".
func (c *conn) fetchStart(w *imapwire.Writer, seq, uid uint32) {
	w.Untagged()
	if c.uidOnly {
		w.Number(uid)
		w.Atom(" UIDFETCH (")
		return
	}
	w.Number(seq)
	w.Atom(" FETCH (")
}

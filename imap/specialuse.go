package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/maildir"
)

// errUseAttr refuses CREATE's special use (RFC 6154 section 3): the
// mailbox is not created.
func errUseAttr(text string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "USEATTR", Text: text}
}

// creatableUses are the special uses CREATE may give: \All and \Flagged
// name views of other mailboxes, which a Maildir folder cannot be.
var creatableUses = []maildir.SpecialUse{maildir.SpecialArchive, maildir.SpecialDrafts,
	maildir.SpecialJunk, maildir.SpecialSent, maildir.SpecialTrash}

// specialUseOf checks CREATE's USE list (CREATE-SPECIAL-USE): at most
// one attribute, one a folder can hold, matched without regard to case.
func specialUseOf(attrs []imap.MailboxAttr) (maildir.SpecialUse, error) {
	switch len(attrs) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", errUseAttr("One special use per mailbox")
	}
	for _, u := range creatableUses {
		if strings.EqualFold(string(u), string(attrs[0])) {
			return u, nil
		}
	}
	return "", errUseAttr("Special use not supported for a mailbox of its own")
}

// giveSpecialUse records the special use of the folder name just
// created; if that fails, the folder is removed again.
func (s *session) giveSpecialUse(name string, use maildir.SpecialUse) error {
	if use == "" {
		return nil
	}
	if err := s.md.SetSpecialUse(s.ctx, name, use); err != nil {
		if derr := s.md.DeleteFolder(s.ctx, name); derr != nil {
			s.srv.log.Error("imap: removing a folder whose special use failed", "session", s.nc.id, "err", derr)
		}
		return mapError(err)
	}
	return nil
}

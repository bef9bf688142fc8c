package imap

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// envelopeFromHeader is a message's ENVELOPE (RFC 9051 section 7.5.2): date,
// subject and message IDs as the header has them (unfolded; encoded
// words left for the client), addresses parsed.
func envelopeFromHeader(h textproto.Header) *imap.Envelope {
	mh := mail.Header{Header: message.Header{Header: h}}
	e := &imap.Envelope{Subject: unfold(h.Get("Subject"))}
	e.Date, _ = mh.Date()
	e.From = addressList(mh, "From")
	e.Sender = addressList(mh, "Sender")
	e.ReplyTo = addressList(mh, "Reply-To")
	e.To = addressList(mh, "To")
	e.Cc = addressList(mh, "Cc")
	e.Bcc = addressList(mh, "Bcc")
	if ids, err := mh.MsgIDList("In-Reply-To"); err == nil {
		e.InReplyTo = ids
	}
	if id, err := mh.MessageID(); err == nil {
		e.MessageID = id
	}
	return e
}

func unfold(s string) string {
	return strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(s)
}

// addressList parses an address field with parseAddressList: groups,
// comments and obsolete forms as Dovecot reads them, where net/mail
// refuses the whole field.
func addressList(mh mail.Header, key string) []imap.Address {
	v := mh.Get(key)
	if v == "" {
		return nil
	}
	return parseAddressList(unfold(v))
}

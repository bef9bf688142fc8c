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

// addressList parses an address field; a field that does not parse is
// left out, as a client would show it anyway from the header.
func addressList(mh mail.Header, key string) []imap.Address {
	list, err := mh.AddressList(key)
	if err != nil {
		return nil
	}
	out := make([]imap.Address, 0, len(list))
	for _, a := range list {
		local, host := a.Address, ""
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
			local, host = a.Address[:i], a.Address[i+1:]
		}
		out = append(out, imap.Address{Name: a.Name, Mailbox: local, Host: host})
	}
	return out
}

package imap

import (
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
)

// envelope is a message's ENVELOPE (RFC 9051 section 7.5.2): date,
// subject and message IDs as the header has them (unfolded; encoded
// words left for the client), addresses parsed with their source
// routes, which go-imap's Envelope has no field for.
type envelope struct {
	Date                               time.Time
	Subject                            string
	From, Sender, ReplyTo, To, Cc, Bcc []address
	InReplyTo                          []string // without angle brackets
	MessageID                          string   // likewise
}

// envelopeFromHeader builds a message's ENVELOPE from its header.
func envelopeFromHeader(h textproto.Header) *envelope {
	mh := mail.Header{Header: message.Header{Header: h}}
	e := &envelope{Subject: unfold(h.Get("Subject"))}
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
func addressList(mh mail.Header, key string) []address {
	v := mh.Get(key)
	if v == "" {
		return nil
	}
	return parseAddressList(unfold(v))
}

// envelopeDate is the layout of ENVELOPE's date: RFC 5322's.
const envelopeDate = "Mon, 02 Jan 2006 15:04:05 -0700"

// write writes the ENVELOPE structure; an empty one for nil. Sender and
// Reply-To default to From, as the RFC requires of the server.
func (e *envelope) write(w *imapwire.Writer) {
	if e == nil {
		e = &envelope{}
	}
	w.Open()
	if e.Date.IsZero() {
		w.Atom("NIL")
	} else {
		w.String(e.Date.Format(envelopeDate))
	}
	w.SP()
	w.NString(e.Subject, e.Subject != "")
	sender, replyTo := e.Sender, e.ReplyTo
	if len(sender) == 0 {
		sender = e.From
	}
	if len(replyTo) == 0 {
		replyTo = e.From
	}
	for _, list := range [][]address{e.From, sender, replyTo, e.To, e.Cc, e.Bcc} {
		w.SP()
		writeAddresses(w, list)
	}
	w.SP()
	ids := make([]string, len(e.InReplyTo))
	for i, id := range e.InReplyTo {
		ids[i] = msgID(id)
	}
	inReplyTo := strings.Join(ids, " ")
	w.NString(inReplyTo, inReplyTo != "")
	w.SP()
	w.NString(msgID(e.MessageID), e.MessageID != "")
	w.Close()
}

// msgID puts a message ID back in angle brackets, as the header has it.
func msgID(id string) string {
	if id == "" || strings.HasPrefix(id, "<") {
		return id
	}
	return "<" + id + ">"
}

// writeAddresses writes an address list: NIL when empty, else each
// address structure (name, adl, mailbox, host), group markers included.
func writeAddresses(w *imapwire.Writer, list []address) {
	if len(list) == 0 {
		w.Atom("NIL")
		return
	}
	w.Open()
	for _, a := range list {
		w.Open()
		w.NString(a.Name, a.Name != "")
		w.SP()
		w.NString(a.Route, a.Route != "")
		w.SP()
		w.NString(a.Mailbox, a.Mailbox != "" || a.Host != "")
		w.SP()
		w.NString(a.Host, a.Host != "")
		w.Close()
	}
	w.Close()
}

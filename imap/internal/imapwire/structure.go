package imapwire

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// envelopeDate is the layout of ENVELOPE's date: RFC 5322's.
const envelopeDate = "Mon, 02 Jan 2006 15:04:05 -0700"

// Envelope writes an ENVELOPE structure (RFC 9051 section 7.5.2). Sender
// and Reply-To default to From, as the RFC requires of the server.
func (w *Writer) Envelope(e *imap.Envelope) {
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
	for _, list := range [][]imap.Address{e.From, sender, replyTo, e.To, e.Cc, e.Bcc} {
		w.SP()
		w.addresses(list)
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

// msgID puts a message ID in angle brackets, as the header has it:
// go-imap's Envelope holds IDs without them.
func msgID(id string) string {
	if id == "" || strings.HasPrefix(id, "<") {
		return id
	}
	return "<" + id + ">"
}

func (w *Writer) addresses(list []imap.Address) {
	if len(list) == 0 {
		w.Atom("NIL")
		return
	}
	w.Open()
	for _, a := range list {
		w.Open()
		w.NString(a.Name, a.Name != "")
		w.Atom(" NIL ")
		w.NString(a.Mailbox, a.Mailbox != "" || a.Host != "")
		w.SP()
		w.NString(a.Host, a.Host != "")
		w.Close()
	}
	w.Close()
}

// BodyStructure writes BODY (extended false) or BODYSTRUCTURE (RFC 9051
// section 7.5.2).
func (w *Writer) BodyStructure(bs imap.BodyStructure, extended bool) {
	switch bs := bs.(type) {
	case *imap.BodyStructureSinglePart:
		w.singlePart(bs, extended)
	case *imap.BodyStructureMultiPart:
		w.multiPart(bs, extended)
	default:
		// A message without structure: an empty text/plain part.
		w.singlePart(&imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Encoding: "7bit", Text: &imap.BodyStructureText{}}, extended)
	}
}

func (w *Writer) singlePart(bs *imap.BodyStructureSinglePart, extended bool) {
	w.Open()
	w.String(orDefault(bs.Type, "text"))
	w.SP()
	w.String(orDefault(bs.Subtype, "plain"))
	w.SP()
	w.params(bs.Params)
	w.SP()
	w.NString(bs.ID, bs.ID != "")
	w.SP()
	w.NString(bs.Description, bs.Description != "")
	w.SP()
	w.String(orDefault(bs.Encoding, "7bit"))
	w.SP()
	w.Number(bs.Size)
	switch {
	case bs.MessageRFC822 != nil:
		m := bs.MessageRFC822
		w.SP()
		if m.Envelope != nil {
			w.Envelope(m.Envelope)
		} else {
			w.Envelope(&imap.Envelope{})
		}
		w.SP()
		w.BodyStructure(m.BodyStructure, extended)
		w.SP()
		w.Number64(uint64(max(m.NumLines, 0)))
	case bs.Text != nil:
		w.SP()
		w.Number64(uint64(max(bs.Text.NumLines, 0)))
	}
	if extended {
		// body-ext-1part: md5, disposition, language, location.
		ext := bs.Extended
		if ext == nil {
			ext = &imap.BodyStructureSinglePartExt{}
		}
		w.Atom(" NIL ")
		w.disposition(ext.Disposition)
		w.SP()
		w.language(ext.Language)
		w.SP()
		w.NString(ext.Location, ext.Location != "")
	}
	w.Close()
}

func (w *Writer) multiPart(bs *imap.BodyStructureMultiPart, extended bool) {
	w.Open()
	for _, c := range bs.Children {
		w.BodyStructure(c, extended)
	}
	if len(bs.Children) == 0 {
		// RFC 9051 requires at least one body: an empty text part.
		w.BodyStructure(nil, extended)
	}
	w.SP()
	w.String(orDefault(bs.Subtype, "mixed"))
	if extended {
		ext := bs.Extended
		if ext == nil {
			ext = &imap.BodyStructureMultiPartExt{}
		}
		w.SP()
		w.params(ext.Params)
		w.SP()
		w.disposition(ext.Disposition)
		w.SP()
		w.language(ext.Language)
		w.SP()
		w.NString(ext.Location, ext.Location != "")
	}
	w.Close()
}

// params writes a body-fld-param: NIL or (name value ...), in name order
// so that the same message always gets the same bytes.
func (w *Writer) params(p map[string]string) {
	if len(p) == 0 {
		w.Atom("NIL")
		return
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.Open()
	for i, k := range keys {
		if i > 0 {
			w.SP()
		}
		w.String(k)
		w.SP()
		w.String(p[k])
	}
	w.Close()
}

func (w *Writer) disposition(d *imap.BodyStructureDisposition) {
	if d == nil || d.Value == "" {
		w.Atom("NIL")
		return
	}
	w.Open()
	w.String(d.Value)
	w.SP()
	w.params(d.Params)
	w.Close()
}

func (w *Writer) language(l []string) {
	switch len(l) {
	case 0:
		w.Atom("NIL")
	case 1:
		w.String(l[0])
	default:
		w.Open()
		for i, s := range l {
			if i > 0 {
				w.SP()
			}
			w.String(s)
		}
		w.Close()
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

package imapwire

import (
	"slices"

	"github.com/emersion/go-imap/v2"
)

// BodyStructure writes BODY (extended false) or BODYSTRUCTURE (RFC 9051
// section 7.5.2). envelope writes the ENVELOPE of a message/rfc822
// part: the engine's envelope carries what go-imap's does not (source
// routes), so the part's own Envelope field is not read.
func (w *Writer) BodyStructure(bs imap.BodyStructure, extended bool, envelope func(*imap.BodyStructureMessageRFC822)) {
	switch bs := bs.(type) {
	case *imap.BodyStructureSinglePart:
		w.singlePart(bs, extended, envelope)
	case *imap.BodyStructureMultiPart:
		w.multiPart(bs, extended, envelope)
	default:
		// A message without structure: an empty text/plain part.
		w.singlePart(&imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Encoding: "7bit", Text: &imap.BodyStructureText{}}, extended, envelope)
	}
}

func (w *Writer) singlePart(bs *imap.BodyStructureSinglePart, extended bool, envelope func(*imap.BodyStructureMessageRFC822)) {
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
		envelope(m)
		w.SP()
		w.BodyStructure(m.BodyStructure, extended, envelope)
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

func (w *Writer) multiPart(bs *imap.BodyStructureMultiPart, extended bool, envelope func(*imap.BodyStructureMessageRFC822)) {
	w.Open()
	for _, c := range bs.Children {
		w.BodyStructure(c, extended, envelope)
	}
	if len(bs.Children) == 0 {
		// RFC 9051 requires at least one body: an empty text part.
		w.BodyStructure(nil, extended, envelope)
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

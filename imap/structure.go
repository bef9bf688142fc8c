package imap

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/textproto"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/internal/mimetree"
	"github.com/mailagent/mailagent/maildir"
)

// structure returns the MIME structure of message uid (open as fh and
// served as src): from the folder's cache, or parsed once (linear time,
// bounded depth and parts) and cached, so that BODYSTRUCTURE and
// BODY[section] of a hostile message cost its parse once.
func (s *session) structure(uid uint32, fh *os.File, src io.ReadSeeker) (*mimetree.Part, error) {
	return s.structureIn(s.sel.folder, uid, fh, src)
}

// structureIn is structure for a message of folder f, selected or not.
func (s *session) structureIn(f *maildir.Folder, uid uint32, fh *os.File, src io.ReadSeeker) (*mimetree.Part, error) {
	var tree *mimetree.Part
	_, err := f.CachedUpdate(s.ctx, uid, fh, func(cached []byte) ([]byte, bool, error) {
		if cm, ok := decodeCachedMessage(cached); ok {
			tree = cm.tree
			return cached, false, nil // with its preview, if it has one
		}
		p, err := parseStructure(src)
		if err != nil {
			return nil, false, err
		}
		tree = p
		return p.Marshal(), true, nil
	})
	return tree, err
}

// messageEnvelopes are the ENVELOPEs of a structure's message/rfc822
// parts, in the engine's own type (with source routes).
type messageEnvelopes map[*imap.BodyStructureMessageRFC822]*envelope

// write writes the ENVELOPE of part m, for imapwire's BodyStructure.
func (envs messageEnvelopes) write(w *imapwire.Writer) func(*imap.BodyStructureMessageRFC822) {
	return func(m *imap.BodyStructureMessageRFC822) { envs[m].write(w) }
}

// bodyStructure converts a parsed structure to go-imap's, with the
// envelopes of its message parts beside it. A multipart or message part
// presented as a leaf (below the depth cap, or without parts) is
// text/plain, as Dovecot shows it.
func bodyStructure(p *mimetree.Part) (imap.BodyStructure, messageEnvelopes) {
	envs := messageEnvelopes{}
	return envs.convert(p), envs
}

func (envs messageEnvelopes) convert(p *mimetree.Part) imap.BodyStructure {
	if p.IsMultipart() && len(p.Children) > 0 {
		bs := &imap.BodyStructureMultiPart{Subtype: p.Subtype}
		for _, c := range p.Children {
			bs.Children = append(bs.Children, envs.convert(c))
		}
		bs.Extended = &imap.BodyStructureMultiPartExt{
			Params:      paramMap(p.Params),
			Disposition: disposition(p),
			Language:    p.Language,
			Location:    p.Location,
		}
		return bs
	}
	bs := &imap.BodyStructureSinglePart{
		Type:        p.Type,
		Subtype:     p.Subtype,
		Params:      paramMap(p.Params),
		ID:          p.ID,
		Description: p.Description,
		Encoding:    p.Encoding,
		Size:        uint32(min(p.Size(), 1<<32-1)),
	}
	if p.Type == "multipart" || p.Type == "message" && !p.IsMessage() && (p.Subtype == "rfc822" || p.Subtype == "global") {
		bs.Type, bs.Subtype, bs.Params = "text", "plain", nil
	}
	if p.IsMessage() {
		c := p.Children[0]
		bs.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			BodyStructure: envs.convert(c),
			NumLines:      p.Lines,
		}
		envs[bs.MessageRFC822] = envelopeOf(c.Envelope)
	}
	if bs.Type == "text" {
		bs.Text = &imap.BodyStructureText{NumLines: p.Lines}
	}
	bs.Extended = &imap.BodyStructureSinglePartExt{
		Disposition: disposition(p),
		Language:    p.Language,
		Location:    p.Location,
	}
	return bs
}

func paramMap(ps []mimetree.Param) map[string]string {
	if len(ps) == 0 {
		return nil
	}
	m := make(map[string]string, len(ps))
	for _, x := range ps {
		m[x.Name] = x.Value
	}
	return m
}

func disposition(p *mimetree.Part) *imap.BodyStructureDisposition {
	if p.Disposition == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: p.Disposition, Params: paramMap(p.DispositionParams)}
}

// envelopeOf builds ENVELOPE from the header fields the parser kept.
func envelopeOf(fields []mimetree.Field) *envelope {
	var h textproto.Header
	for _, f := range fields {
		h.Add(f.Key, f.Value)
	}
	return envelopeFromHeader(h)
}

// maxSectionPath bounds a section's part numbers: each number goes one
// level down and no part lies deeper than the parser's depth cap (one
// more for the "1" of a message that is not multipart), so a longer path
// names nothing and is not walked. The command parser refuses paths
// longer than that already.
const maxSectionPath = mimetree.MaxDepth + 1

// findPart resolves a section's part numbers (RFC 3501 §6.4.5): the
// parts of a multipart, the message inside a message/rfc822 part, and
// "1" for the body of a part that is neither. nil: no such part.
func findPart(root *mimetree.Part, path []int) *mimetree.Part {
	if len(path) > maxSectionPath {
		return nil
	}
	p := root
	if !p.IsMultipart() && len(path) > 0 && path[0] == 1 {
		path = path[1:]
	}
	for _, n := range path {
		if p.IsMessage() {
			p = p.Children[0]
		}
		if !p.IsMultipart() {
			if n != 1 {
				return nil
			}
			continue
		}
		if n < 1 || n > len(p.Children) {
			return nil
		}
		p = p.Children[n-1]
	}
	return p
}

// readRange reads [from, to) of the message.
func readRange(src io.ReadSeeker, from, to int64) ([]byte, error) {
	if _, err := src.Seek(from, io.SeekStart); err != nil {
		return nil, err
	}
	b := make([]byte, max(to-from, 0))
	_, err := io.ReadFull(src, b)
	return b, err
}

// bodySection returns BODY[section] from the message's structure; nil
// when the section does not exist. The header of a part is sent as
// stored; HEADER.FIELDS (.NOT) filter it.
func bodySection(src io.ReadSeeker, root *mimetree.Part, bs *imap.FetchItemBodySection) ([]byte, error) {
	from, to, ok := sectionRange(root, bs)
	if !ok {
		return nil, nil
	}
	b, err := readRange(src, from, to)
	if err != nil {
		return nil, err
	}
	if len(bs.HeaderFields) > 0 || len(bs.HeaderFieldsNot) > 0 {
		b = filterHeader(b, bs.HeaderFields, bs.HeaderFieldsNot)
	}
	return partialOf(b, bs.Partial), nil
}

// sectionRange returns where BODY[section] lies in the message, before
// HEADER.FIELDS filters it; ok is false when the section does not exist.
func sectionRange(root *mimetree.Part, bs *imap.FetchItemBodySection) (from, to int64, ok bool) {
	p := findPart(root, bs.Part)
	if p == nil {
		return 0, 0, false
	}
	if len(bs.Part) > 0 && (bs.Specifier == imap.PartSpecifierHeader || bs.Specifier == imap.PartSpecifierText) && p.IsMessage() {
		p = p.Children[0]
	}
	switch {
	case bs.Specifier == imap.PartSpecifierText || bs.Specifier == imap.PartSpecifierNone && len(bs.Part) > 0:
		return p.BodyStart, p.End, true
	case bs.Specifier == imap.PartSpecifierNone:
		return 0, p.End, true
	default: // HEADER, MIME, HEADER.FIELDS
		return p.HeaderStart, p.BodyStart, true
	}
}

// filterHeader keeps the fields named in keep (all if empty) that are
// not named in drop.
func filterHeader(b []byte, keep, drop []string) []byte {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		return []byte("\r\n")
	}
	if len(keep) > 0 {
		want := make(map[string]bool, len(keep))
		for _, k := range keep {
			want[strings.ToLower(k)] = true
		}
		for f := h.Fields(); f.Next(); {
			if !want[strings.ToLower(f.Key())] {
				f.Del()
			}
		}
	}
	for _, k := range drop {
		h.Del(k)
	}
	var out bytes.Buffer
	if err := textproto.WriteHeader(&out, h); err != nil {
		return []byte("\r\n")
	}
	return out.Bytes()
}

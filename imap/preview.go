package imap

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
	"mime/quotedprintable"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/internal/mimetree"
)

// PREVIEW (RFC 8970) and Dovecot's older spellings of it, SNIPPET
// (FUZZY) and PREVIEW (FUZZY): a plain-text preview of a message, made
// from its first text part and kept in the folder's cache beside the
// MIME structure, so that a message is read for it once.

// Preview limits.
const (
	// maxPreviewChars is RFC 8970's bound on a preview (section 3.3).
	maxPreviewChars = 256
	// maxPreviewInput bounds the bytes of the text part read (before
	// and after its transfer encoding is decoded): a preview comes from
	// the start of the text, and a hostile part costs no more than this.
	maxPreviewInput = 32 << 10
)

// previewRecord marks a cache record holding a MIME structure and a
// preview; a record of the structure alone starts with mimetree's
// encoding version.
const previewRecord = 0xF1

// cachedMessage is what the folder's cache holds of a message.
type cachedMessage struct {
	tree       *mimetree.Part
	preview    string
	hasPreview bool
}

// encode writes the record: the structure alone, or with the preview.
func (cm *cachedMessage) encode() []byte {
	tree := cm.tree.Marshal()
	if !cm.hasPreview {
		return tree
	}
	b := []byte{previewRecord}
	b = binary.AppendUvarint(b, uint64(len(tree)))
	b = append(b, tree...)
	return append(b, cm.preview...)
}

// splitCachedMessage splits a record encode wrote into the encoded
// structure and the preview, if it has one; ok is false for a record
// of another form.
func splitCachedMessage(data []byte) (tree []byte, preview string, hasPreview, ok bool) {
	if len(data) == 0 || data[0] != previewRecord {
		return data, "", false, true
	}
	n, k := binary.Uvarint(data[1:])
	if k <= 0 || n > uint64(len(data)-1-k) {
		return nil, "", false, false
	}
	rest := data[1+k+int(n):]
	if len(rest) > 4*maxPreviewChars || !utf8.Valid(rest) {
		return nil, "", false, false
	}
	return data[1+k : 1+k+int(n)], string(rest), true, true
}

// decodeCachedMessage reads a record encode wrote; ok is false for
// anything else (a record of another version is computed again).
func decodeCachedMessage(data []byte) (cm cachedMessage, ok bool) {
	data, cm.preview, cm.hasPreview, ok = splitCachedMessage(data)
	if !ok {
		return cachedMessage{}, false
	}
	p, err := mimetree.Unmarshal(data)
	if err != nil {
		return cachedMessage{}, false
	}
	cm.tree = p
	return cm, true
}

// parseStructure parses the message served as src from its start.
func parseStructure(src io.ReadSeeker) (*mimetree.Part, error) {
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return mimetree.Parse(src)
}

// messagePreview returns the preview of message uid (open as fh and
// served as read returns it, called only when the message must be
// read): from the folder's cache, or made and cached. lazy (RFC 8970
// section 3.1) only looks it up: ok is false when it is not there yet,
// and the server's background pool is asked to make it
// (previewqueue.go).
func (s *session) messagePreview(uid uint32, fh *os.File, read func() (io.ReadSeeker, error), lazy bool) (preview string, ok bool, err error) {
	preview, ok, err = cachedPreview(s.ctx, s.sel.folder, uid, fh, read, lazy)
	if err == nil && lazy && !ok {
		s.srv.requestPreview(s.sel.mb.key, s.sel.folder, uid)
	}
	return preview, ok, err
}

// previewText makes the preview of the message served as src, whose
// structure is tree: the text of its first text/plain or text/html
// part that is not an attachment (text/plain preferred among
// alternatives), transfer encoding and charset decoded, HTML markup and
// quoted lines left out, white space collapsed, at most 256
// characters. A message without such a part has the empty preview.
func previewText(src io.ReadSeeker, tree *mimetree.Part) string {
	p := previewPart(tree, 0)
	if p == nil {
		return ""
	}
	if _, err := src.Seek(p.BodyStart, io.SeekStart); err != nil {
		return ""
	}
	var r io.Reader = io.LimitReader(src, min(p.Size(), maxPreviewInput))
	switch strings.ToLower(strings.TrimSpace(p.Encoding)) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	}
	// A decoding error ends the text where it occurs: the preview is
	// made of what came before.
	raw, _ := io.ReadAll(io.LimitReader(r, maxPreviewInput))
	text := previewCharset(p.Param("charset"), raw)
	if p.Subtype == "html" {
		text = htmlText(text)
	} else {
		text = unquoted(text)
	}
	return collapse(text, maxPreviewChars)
}

// previewPart finds the part a preview is made from.
func previewPart(p *mimetree.Part, depth int) *mimetree.Part {
	if depth > mimetree.MaxDepth || p.Disposition == "attachment" {
		return nil
	}
	if p.IsMultipart() {
		var first *mimetree.Part
		for _, c := range p.Children {
			if f := previewPart(c, depth+1); f != nil {
				if p.Subtype != "alternative" || f.Subtype == "plain" {
					return f
				}
				if first == nil {
					first = f
				}
			}
		}
		return first
	}
	if p.Type == "text" && (p.Subtype == "plain" || p.Subtype == "html") {
		return p
	}
	return nil
}

// previewCharset converts a part's text to UTF-8: from its declared
// charset, or, without one (or with one not known), as UTF-8 when it
// is valid and Windows-1252 otherwise, as SEARCH reads it.
func previewCharset(label string, b []byte) string {
	if label != "" && !strings.EqualFold(label, "utf-8") && !strings.EqualFold(label, "us-ascii") {
		if r, err := decodeCharset(label, bytes.NewReader(b)); err == nil {
			if d, err := io.ReadAll(r); err == nil || len(d) > 0 {
				return strings.ToValidUTF8(string(d), "")
			}
		}
	}
	return strings.ToValidUTF8(legacyToUTF8(string(b)), "")
}

// htmlText returns the text of an HTML document: markup, comments and
// the content of head, script and style left out, entities decoded,
// block elements separated by a space.
func htmlText(doc string) string {
	z := html.NewTokenizer(strings.NewReader(doc))
	z.SetMaxBuf(maxPreviewInput)
	var b strings.Builder
	skip := 0 // inside head, script, style, template or title
	for b.Len() < maxPreviewInput {
		switch z.Next() {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.Data {
			case "head", "script", "style", "template", "title":
				if tok.Type == html.StartTagToken {
					skip++
				} else if tok.Type == html.EndTagToken && skip > 0 {
					skip--
				}
			}
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// unquoted drops the lines of a plain text that quote another message
// ("> ..."), which say nothing new.
func unquoted(text string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if strings.HasPrefix(strings.TrimLeft(line, " \t"), ">") {
			continue
		}
		b.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// collapse turns every run of white space and control characters into
// one space, trims the ends and keeps at most max characters.
func collapse(text string, max int) string {
	var b strings.Builder
	n := 0
	space := false
	for _, r := range text {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			space = b.Len() > 0
			continue
		}
		if space {
			if n++; n > max {
				break
			}
			b.WriteByte(' ')
			space = false
		}
		if n++; n > max {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimRight(b.String(), " ")
}

// previewItem is how a FETCH asked for the preview.
type previewItem struct {
	want bool
	lazy bool // RFC 8970's LAZY: only a preview already made
	// name and fuzzy: SNIPPET or PREVIEW, and whether the answer is
	// Dovecot's older "(FUZZY text)".
	name  string
	fuzzy bool
}

func previewItemOf(a *imapwire.Fetch) previewItem {
	if !a.Preview {
		return previewItem{}
	}
	p := previewItem{want: true, lazy: a.PreviewLazy, name: "PREVIEW", fuzzy: a.PreviewFuzzy}
	if a.Snippet {
		p.name, p.fuzzy = "SNIPPET", true
	}
	return p
}

// write writes the item: PREVIEW "text" (RFC 8970), or NIL for a lazy
// one not made yet; SNIPPET (FUZZY "text") and PREVIEW (FUZZY "text")
// for the older forms.
func (p previewItem) write(w *imapwire.Writer, mc *msgContent) {
	w.Atom(p.name + " ")
	if p.fuzzy {
		w.Atom("(FUZZY ")
	}
	w.NString(mc.preview, mc.hasPreview)
	if p.fuzzy {
		w.Atom(")")
	}
}

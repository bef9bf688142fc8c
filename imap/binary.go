package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/textproto"
	"github.com/mailagent/mailagent/internal/mimetree"
)

// errUnknownCTE answers BINARY for a part whose content transfer
// encoding the server cannot undo (RFC 3516 section 4.2).
var errUnknownCTE = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeUnknownCTE,
	Text: "Unknown Content-Transfer-Encoding",
}

// binarySection returns RFC 3516's BINARY[part]: the part with its
// content-transfer-encoding undone and nothing else, so a text part
// keeps its own charset. An encoding other than 7bit, 8bit, binary,
// base64 and quoted-printable gives errUnknownCTE.
func binarySection(r io.ReadSeeker, root *mimetree.Part, part []int, partial *imap.SectionPartial) ([]byte, error) {
	p := findPart(root, part)
	if p == nil {
		return nil, nil
	}
	head, err := readRange(r, p.HeaderStart, p.BodyStart)
	if err != nil {
		return nil, err
	}
	body, err := readRange(r, p.BodyStart, p.End)
	if err != nil {
		return nil, err
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return partialOf(body, partial), nil
	}
	var dec io.Reader
	switch cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); cte {
	case "base64":
		body = decodeBase64Lenient(body)
	case "quoted-printable":
		dec = quotedprintable.NewReader(bytes.NewReader(body))
	case "", "7bit", "8bit", "binary":
	default:
		return nil, errUnknownCTE
	}
	if dec != nil {
		// A broken encoding yields what decoded before the damage.
		b, _ := io.ReadAll(dec)
		body = b
	}
	if len(part) == 0 {
		body = append(head, body...)
	}
	return partialOf(body, partial), nil
}

// decodeBase64Lenient decodes a base64 body as RFC 2045 section 6.8
// asks of decoders: characters outside the base64 alphabet (white space
// anywhere in a line, not only line breaks) are ignored, and the data
// ends at the first "="; a last group cut short yields the whole bytes
// it holds.
func decodeBase64Lenient(body []byte) []byte {
	clean := make([]byte, 0, len(body))
	for _, c := range body {
		if c == '=' {
			break
		}
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1] // six bits make no byte
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, _ := base64.RawStdEncoding.Decode(out, clean)
	return out[:n]
}

func partialOf(b []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	if p.Offset >= int64(len(b)) {
		return nil
	}
	b = b[p.Offset:]
	if p.Size >= 0 && p.Size < int64(len(b)) {
		b = b[:p.Size]
	}
	return b
}

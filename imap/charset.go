package imap

import (
	"errors"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// searchCharsets are the SEARCH charsets named in BADCHARSET (RFC 3501
// section 6.4.4): those mail clients send. searchEncoding also takes
// their IANA aliases and the other single- and multi-byte charsets
// golang.org/x/text knows.
var searchCharsets = []string{
	"UTF-8", "US-ASCII",
	"ISO-8859-1", "ISO-8859-2", "ISO-8859-3", "ISO-8859-4", "ISO-8859-5",
	"ISO-8859-6", "ISO-8859-7", "ISO-8859-8", "ISO-8859-9", "ISO-8859-10",
	"ISO-8859-13", "ISO-8859-14", "ISO-8859-15", "ISO-8859-16",
	"WINDOWS-1250", "WINDOWS-1251", "WINDOWS-1252", "WINDOWS-1253", "WINDOWS-1254",
	"WINDOWS-1255", "WINDOWS-1256", "WINDOWS-1257", "WINDOWS-1258",
	"KOI8-R", "KOI8-U",
	"ISO-2022-JP", "SHIFT_JIS", "EUC-JP", "EUC-KR", "GB2312", "GBK", "GB18030", "BIG5",
}

// errBadCharset is SEARCH's answer to a charset it cannot convert.
var errBadCharset = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCode(string(imap.ResponseCodeBadCharset) + " (" + strings.Join(searchCharsets, " ") + ")"),
	Text: "Unsupported SEARCH charset",
}

// errSearchNotUTF8 answers search strings that are not valid in the
// charset the command named (UTF-8 or US-ASCII by default).
var errSearchNotUTF8 = &imap.Error{
	Type: imap.StatusResponseTypeBad,
	Code: imap.ResponseCodeClientBug,
	Text: "SEARCH string not valid in its charset",
}

// searchEncoding returns the decoder for a SEARCH CHARSET, or nil for
// UTF-8 and US-ASCII, whose strings are taken as UTF-8 (a client naming
// US-ASCII may still send UTF-8, which is its superset). Encodings that
// cannot carry IMAP strings (UTF-16 and UTF-32, which contain NULs) are
// refused with errBadCharset.
func searchEncoding(name string) (encoding.Encoding, error) {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "", "UTF-8", "UTF8", "US-ASCII", "ASCII":
		return nil, nil
	}
	e, err := ianaindex.MIME.Encoding(name)
	if err != nil || e == nil {
		// HTML's index knows labels ianaindex does not (ISO-8859-11,
		// GB2312 as GBK, cp1252).
		if e, err = htmlindex.Get(name); err != nil {
			return nil, errBadCharset
		}
	}
	if n, err := htmlindex.Name(e); err == nil {
		switch n {
		case "utf-8":
			return nil, nil
		case "utf-16be", "utf-16le", "replacement", "x-user-defined":
			return nil, errBadCharset
		}
	}
	if n, err := ianaindex.MIME.Name(e); err == nil && strings.HasPrefix(strings.ToUpper(n), "UTF-") {
		return nil, errBadCharset
	}
	return e, nil
}

// decodeSearchString converts one search string from enc (nil: UTF-8)
// to UTF-8. Each string is decoded on its own, so a stateful charset
// (ISO-2022-JP) starts in its initial state.
func decodeSearchString(enc encoding.Encoding, s string) (string, error) {
	if enc != nil {
		out, err := enc.NewDecoder().String(s)
		// Decoders replace what is not valid in their charset by
		// U+FFFD, which none of these charsets can carry itself.
		if err != nil || strings.ContainsRune(out, utf8.RuneError) {
			return "", errSearchNotUTF8
		}
		s = out
	}
	if !utf8.ValidString(s) {
		return "", errSearchNotUTF8
	}
	return s, nil
}

// decodeSearchCriteria converts every string of c (header values,
// BODY, TEXT, in NOT and OR too) from the charset enc to UTF-8.
func decodeSearchCriteria(c *imapwire.SearchCriteria, enc encoding.Encoding) error {
	var err error
	conv := func(s string) string {
		if err != nil {
			return s
		}
		var out string
		out, err = decodeSearchString(enc, s)
		return out
	}
	for i := range c.Header {
		c.Header[i].Value = conv(c.Header[i].Value)
	}
	for i := range c.Body {
		c.Body[i] = conv(c.Body[i])
	}
	for i := range c.Text {
		c.Text[i] = conv(c.Text[i])
	}
	if err != nil {
		return err
	}
	for i := range c.Not {
		if err := decodeSearchCriteria(&c.Not[i], enc); err != nil {
			return err
		}
	}
	for i := range c.Or {
		for j := range c.Or[i] {
			if err := decodeSearchCriteria(&c.Or[i][j], enc); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeCharset returns a reader of r's text, in the named charset, as
// UTF-8. It knows the WHATWG Encoding Standard's labels (ISO-8859-*,
// Windows-125x, KOI8, GBK/GB18030, Big5, Shift_JIS, EUC-JP,
// ISO-2022-JP, EUC-KR, UTF-16) and the IANA names htmlindex lacks. It
// is used for SEARCH only, not installed as go-message's global
// CharsetReader, which would make BINARY[] sections come out converted.
func decodeCharset(label string, r io.Reader) (io.Reader, error) {
	e, err := htmlindex.Get(label)
	if err != nil {
		if e, err = ianaindex.MIME.Encoding(label); err != nil || e == nil {
			return nil, errUnknownCharset
		}
	}
	return e.NewDecoder().Reader(r), nil
}

var errUnknownCharset = errors.New("imap: unknown charset")

// foldRune maps r to one representative of its Unicode simple case
// folding orbit (the smallest rune in it, or the ASCII small letter for
// orbits with ASCII letters: K, k and the Kelvin sign give k), so that
// two strings equal under simple case folding have equal folded forms.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	rep := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		rep = min(rep, f)
	}
	if 'A' <= rep && rep <= 'Z' {
		return rep + 'a' - 'A'
	}
	return rep
}

// foldString returns s with every rune replaced by foldRune's
// representative; invalid UTF-8 becomes U+FFFD. ASCII-only input
// without capitals is returned as is.
func foldString(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			break
		}
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

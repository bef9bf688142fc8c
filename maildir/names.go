package maildir

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// maxNameLen bounds a folder's on-disk directory name (NAME_MAX).
const maxNameLen = 255

// mutf7 is RFC 3501's modified base64: ',' instead of '/', no padding.
var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// isInbox reports whether name is INBOX, which IMAP matches without case.
func isInbox(name string) bool { return strings.EqualFold(name, "INBOX") }

// CheckName validates a folder name as every folder operation does and
// returns the canonical name ("INBOX" for any spelling of it, also as the
// first level of a child's name). The refusals are *NameError values.
func CheckName(name string) (string, error) {
	if isInbox(name) {
		return "INBOX", nil
	}
	bad := func(reason string) (string, error) { return "", &NameError{Name: name, Reason: reason} }
	switch {
	case name == "":
		return bad("empty")
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	case !norm.NFC.IsNormalString(name):
		return bad("not in Unicode normalization form C")
	case name[0] == '#':
		return bad("leading '#' is reserved for namespaces")
	case name[0] == '~':
		return bad("leading '~'")
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return bad("control character")
		case r == '/' || r == '\\':
			return bad("path separator")
		case r == '*' || r == '%':
			return bad("IMAP wildcard")
		case r == utf8.RuneError:
			return bad("not UTF-8")
		}
	}
	for _, part := range strings.Split(name, string(Delimiter)) {
		if part == "" {
			return bad("empty hierarchy level")
		}
	}
	if len(encodeMUTF7(name))+1 > maxNameLen {
		return bad("too long")
	}
	// INBOX is matched without case also as a parent, as Dovecot does.
	if i := strings.IndexByte(name, Delimiter); i > 0 && isInbox(name[:i]) {
		name = "INBOX" + name[i:]
	}
	return name, nil
}

// folderDirName returns the directory name of a checked, non-INBOX name
// inside the Maildir: "." + modified UTF-7, as Dovecot's Maildir++ layout.
func folderDirName(name string) string { return "." + encodeMUTF7(name) }

// folderFromDirName is the inverse of folderDirName for a directory entry;
// ok is false for entries that are not valid folders.
func folderFromDirName(dir string) (string, bool) {
	if len(dir) < 2 || dir[0] != '.' || dir == ".." {
		return "", false
	}
	name, err := decodeMUTF7(dir[1:])
	if err != nil {
		return "", false
	}
	if c, err := CheckName(name); err != nil || c == "INBOX" {
		return "", false
	}
	return name, true
}

// encodeMUTF7 encodes s (valid UTF-8) in RFC 3501 modified UTF-7.
func encodeMUTF7(s string) string {
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		buf := make([]byte, 0, 2*len(run))
		for _, u := range run {
			buf = append(buf, byte(u>>8), byte(u))
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(buf))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		run = utf16.AppendRune(run, r)
	}
	flush()
	return b.String()
}

var errBadMUTF7 = errors.New("invalid modified UTF-7")

// decodeMUTF7 decodes RFC 3501 modified UTF-7 strictly: it refuses what
// an encoder would never produce, so that every folder has exactly one
// on-disk spelling.
func decodeMUTF7(s string) (string, error) {
	var b strings.Builder
	prevShift := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errBadMUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			prevShift = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errBadMUTF7
		}
		enc := s[i+1 : i+1+end]
		i += end + 2
		if enc == "" {
			b.WriteByte('&')
			prevShift = false
			continue
		}
		if prevShift {
			return "", errBadMUTF7 // two adjacent shifted runs
		}
		raw, err := mutf7.Strict().DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", errBadMUTF7
		}
		units := make([]uint16, len(raw)/2)
		for j := range units {
			units[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
		}
		for j := 0; j < len(units); j++ {
			u := units[j]
			var r rune
			switch {
			case utf16.IsSurrogate(rune(u)):
				if j+1 >= len(units) {
					return "", errBadMUTF7
				}
				r = utf16.DecodeRune(rune(u), rune(units[j+1]))
				if r == utf8.RuneError {
					return "", errBadMUTF7
				}
				j++
			default:
				r = rune(u)
			}
			if r >= 0x20 && r <= 0x7e {
				return "", errBadMUTF7 // printable ASCII must not be encoded
			}
			b.WriteRune(r)
		}
		prevShift = true
	}
	return b.String(), nil
}

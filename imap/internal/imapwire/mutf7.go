package imapwire

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// mutf7Base64 is RFC 3501 section 5.1.3's modified base64: "," for "/"
// and no padding.
var mutf7Base64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// errMUTF7 is returned for a mailbox name that is not valid modified
// UTF-7.
var errMUTF7 = errors.New("mailbox name is not valid modified UTF-7")

// DecodeMUTF7 decodes a mailbox name in modified UTF-7 (RFC 3501
// section 5.1.3) to UTF-8. Runs of "&...-" must hold base64 of UTF-16
// with no bits left over, encode no printable ASCII, pair their
// surrogates and not follow each other directly. Raw UTF-8 outside a run
// is taken as it is: IMAP4rev1 clients that never learned modified
// UTF-7 send it, and refusing them gains nothing. Control characters are
// refused either way.
func DecodeMUTF7(s string) (string, error) {
	if !strings.ContainsRune(s, '&') {
		if !validName(s) {
			return "", errMUTF7
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	afterRun := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '&' {
			if c < 0x20 || c == 0x7f {
				return "", errMUTF7
			}
			b.WriteByte(c)
			afterRun = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errMUTF7
		}
		run := s[i+1 : i+1+end]
		i += end + 1
		if run == "" {
			b.WriteByte('&')
			afterRun = false
			continue
		}
		if afterRun {
			return "", errMUTF7
		}
		if !decodeRun(&b, run) {
			return "", errMUTF7
		}
		afterRun = true
	}
	if !utf8.ValidString(b.String()) {
		return "", errMUTF7
	}
	return b.String(), nil
}

// decodeRun appends the UTF-8 of one base64 run to b.
func decodeRun(b *strings.Builder, run string) bool {
	raw, err := mutf7Base64.Strict().DecodeString(run)
	if err != nil || len(raw) == 0 || len(raw)%2 != 0 {
		return false
	}
	for i := 0; i < len(raw); i += 2 {
		r := rune(raw[i])<<8 | rune(raw[i+1])
		if utf16.IsSurrogate(r) {
			if i+3 >= len(raw) {
				return false
			}
			i += 2
			r = utf16.DecodeRune(r, rune(raw[i])<<8|rune(raw[i+1]))
			if r == utf8.RuneError {
				return false
			}
		} else if r >= 0x20 && r <= 0x7e {
			return false // printable ASCII must be written as itself
		}
		b.WriteRune(r)
	}
	return true
}

// EncodeMUTF7 encodes a UTF-8 mailbox name in modified UTF-7, for
// clients that have not enabled UTF8=ACCEPT or IMAP4rev2.
func EncodeMUTF7(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	var u16 []uint16
	flush := func() {
		if len(u16) == 0 {
			return
		}
		raw := make([]byte, 0, 2*len(u16))
		for _, v := range u16 {
			raw = append(raw, byte(v>>8), byte(v))
		}
		b.WriteByte('&')
		b.WriteString(mutf7Base64.EncodeToString(raw))
		b.WriteByte('-')
		u16 = u16[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			b.WriteRune(r)
			if r == '&' {
				b.WriteByte('-')
			}
			continue
		}
		u16 = utf16.AppendRune(u16, r)
	}
	flush()
	return b.String()
}

// validName reports whether s is valid UTF-8 without control characters,
// what a mailbox name must be after UTF8=ACCEPT (RFC 6855 section 3).
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}

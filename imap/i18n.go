package imap

import "golang.org/x/text/unicode/norm"

// searchFold is the key SEARCH compares strings by: RFC 5051's
// i;unicode-casemap, which I18NLEVEL=1 (RFC 5255 section 4) has SEARCH
// use. Strings are fully decomposed (NFKD) and then case-folded, so
// that "Ärger", "ärger" and "a\u0308rger" match alike; ASCII is only
// case-folded.
func searchFold(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return foldString(norm.NFKD.String(s))
		}
	}
	return foldString(s)
}

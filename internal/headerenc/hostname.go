package headerenc

import (
	"mime"

	"golang.org/x/net/idna"
)

// idnaProfile converts a name a client gave (HELO, EHLO, LHLO) or a
// resolver returned (a PTR name) to its A-labels: UTS #46 lookup mapping
// (case folded), label validity, the Bidi rule and DNS lengths checked,
// so that only a valid internationalised domain name is converted.
var idnaProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true))

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// HostName returns a host name from outside input for a domain position
// of a header field (Received "from", an Authentication-Results
// property), and false when it cannot be written there. An ASCII name
// must be a domain or an address literal as it is. A name with UTF-8 is
// written as it is when utf8OK is set (the message travels with
// SMTPUTF8, RFC 6531 section 3.7.3), and else as its A-labels (RFC 5890)
// when it is a valid internationalised name: a message without SMTPUTF8
// must not carry UTF-8 in its header.
func HostName(name string, utf8OK bool) (string, bool) {
	if isASCII(name) || utf8OK {
		return name, IsDomain(name)
	}
	if !isDotAtom(name) {
		return "", false
	}
	a, err := idnaProfile.ToASCII(name)
	if err != nil || !isASCII(a) || !isDotAtom(a) {
		return "", false
	}
	return a, true
}

// Comment returns s as the content of a comment, like CommentText; when
// utf8OK is false and s holds anything but ASCII, it is written as RFC
// 2047 encoded-words (base64, which holds no character special in a
// comment), so that a header without SMTPUTF8 stays ASCII and a reader
// can still decode the text.
func Comment(s string, utf8OK bool) string {
	s = clean(s)
	if utf8OK || isASCII(s) {
		return CommentText(s)
	}
	return mime.BEncoding.Encode("utf-8", s)
}

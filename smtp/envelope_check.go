package smtp

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/mailagent/mailagent/internal/headerenc"
	"github.com/mailagent/mailagent/smtp/mail"
)

// Sizes of RFC 5321 section 4.5.3.1.1-3, in octets: a receiver must
// accept paths up to these, and need accept nothing longer. They are
// measured on the address as it would be written (its local part
// quoted where it needs quoting), the path with its angle brackets.
const (
	maxLocalPart = 64
	maxDomain    = 255
	maxPath      = 256
	maxLabel     = 63
)

// Replies to envelope addresses that cannot be taken as data. The
// codes are RFC 3463's: X.1.7 bad sender address syntax, X.1.3 bad
// destination address syntax, X.6.7 a non-ASCII address without
// SMTPUTF8 (RFC 6531 section 3.5). The address is never echoed.
var (
	errSenderSyntax = &mail.Error{Code: 501, EnhancedCode: [3]int{5, 1, 7}, Message: "Bad sender address syntax"}
	errSenderLong   = &mail.Error{Code: 501, EnhancedCode: [3]int{5, 1, 7}, Message: "Sender address too long"}
	errRcptSyntax   = &mail.Error{Code: 553, EnhancedCode: [3]int{5, 1, 3}, Message: "Bad recipient address syntax"}
	errParamSyntax  = &mail.Error{Code: 501, EnhancedCode: [3]int{5, 5, 4}, Message: "Duplicate or malformed parameter"}
	errRcptLong     = &mail.Error{Code: 553, EnhancedCode: [3]int{5, 1, 3}, Message: "Recipient address too long"}
	errNeedUTF8     = &mail.Error{Code: 553, EnhancedCode: [3]int{5, 6, 7}, Message: "Non-ASCII address requires SMTPUTF8"}
	errAuthzSyntax  = &mail.Error{Code: 501, EnhancedCode: [3]int{5, 1, 7}, Message: "Bad authorization identity syntax"}
	errHeloSyntax   = "501 5.5.2 Bad HELO argument syntax\r\n"
)

// checkPath checks an envelope address as go-smtp hands it over (the
// local part unquoted): the reverse path of MAIL when sender is set,
// else a forward path of RCPT. utf8 is whether MAIL carried SMTPUTF8.
// The address must be one the server can write into a header as data:
// no control character (C0, DEL, C1), valid UTF-8, non-ASCII only with
// SMTPUTF8, a domain of labels or an address literal, and within the
// sizes of RFC 5321 section 4.5.3.1.
func checkPath(addr string, sender, utf8ok bool) *mail.Error {
	syntax, long := errRcptSyntax, errRcptLong
	if sender {
		syntax, long = errSenderSyntax, errSenderLong
		if addr == "" {
			return nil
		}
	}
	if !utf8.ValidString(addr) || hasControl(addr) {
		return syntax
	}
	ascii := isASCIIString(addr)
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 {
		return syntax
	}
	local, domain := addr[:i], addr[i+1:]
	if !validDomain(domain) {
		return syntax
	}
	if len(headerenc.LocalPart(local)) > maxLocalPart || len(domain) > maxDomain ||
		len(headerenc.Path(addr)) > maxPath {
		return long
	}
	if !ascii && !utf8ok {
		return errNeedUTF8
	}
	return nil
}

// replyLine is e as a one-line reply on the wire.
func replyLine(e *mail.Error) string {
	return fmt.Sprintf("%d %d.%d.%d %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
}

// hasControl reports a C0 control, DEL or a C1 control in s.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return true
		}
	}
	return false
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// validDomain reports an RFC 5321 Domain (labels of letters, digits,
// hyphens, and for RFC 6531 UTF-8; underscores too, which DNS holds and
// senders use) or an address literal of printable ASCII.
func validDomain(d string) bool {
	if d == "" {
		return false
	}
	if d[0] == '[' {
		return validLiteral(d)
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > maxLabel || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
				c == '-', c == '_', c >= 0x80:
			default:
				return false
			}
		}
	}
	return true
}

// validLiteral reports an address literal of RFC 5321 section 4.1.3:
// an IPv4 address, "IPv6:" and an IPv6 address, or a standardized tag
// and printable content.
func validLiteral(d string) bool {
	if len(d) < 3 || d[len(d)-1] != ']' || !headerenc.IsDomain(d) {
		return false
	}
	lit := d[1 : len(d)-1]
	if a, err := netip.ParseAddr(lit); err == nil {
		return a.Is4()
	}
	tag, content, ok := strings.Cut(lit, ":")
	if !ok || content == "" || tag == "" || !validDomain(tag) || strings.Contains(tag, ".") {
		return false
	}
	if strings.EqualFold(tag, "IPv6") {
		a, err := netip.ParseAddr(content)
		return err == nil && a.Is6() && a.Zone() == ""
	}
	return true
}

// checkHelo checks the argument of HELO, EHLO or LHLO: no control
// character anywhere, valid UTF-8, and the name (go-smtp takes the text
// up to the first space) at most a domain's length. The name is echoed
// in the reply and written into Received and Authentication-Results.
func checkHelo(arg string) bool {
	if !utf8.ValidString(arg) || hasControl(arg) {
		return false
	}
	name, _, _ := strings.Cut(arg, " ")
	return len(name) <= maxDomain
}

// checkAuthzid checks a SASL PLAIN response's authorization identity
// (RFC 4616): what it names is an address, so it must be one that could
// be written as data.
func checkAuthzid(mech string, resp []byte) *mail.Error {
	if !strings.EqualFold(mech, "PLAIN") {
		return nil
	}
	authzid, _, ok := strings.Cut(string(resp), "\x00")
	if !ok || authzid == "" {
		return nil
	}
	if !utf8.ValidString(authzid) || hasControl(authzid) || len(authzid) > maxPath {
		return errAuthzSyntax
	}
	return nil
}

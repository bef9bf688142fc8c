package store

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// Limits from RFC 5321 section 4.5.3.1: a local part of at most 64
// octets, a domain of at most 255, and a path of at most 256 octets
// including the angle brackets, so 254 for the address itself.
const (
	maxLocalLen   = 64
	maxDomainLen  = 255
	maxAddressLen = 254
)

// Address is a parsed, normalised mailbox address (RFC 5321 Mailbox,
// extended by RFC 6531 for UTF-8 local parts).
//
// Local is the local part without quoting, in Unicode NFC; its case is
// kept as given, because only the receiving system may interpret it, but
// this package compares local parts case-insensitively. Domain is
// lower-case and in Unicode form (U-labels), or an address literal such
// as "[192.0.2.1]" or "[IPv6:2001:db8::1]".
type Address struct {
	Local  string
	Domain string
}

// AddressError reports an address that cannot be parsed or that uses a
// form this package refuses.
type AddressError struct {
	// Address is the input, truncated to a printable length.
	Address string
	// Reason says what is wrong, in words fit for an SMTP reply.
	Reason string
}

// Error implements error.
func (e *AddressError) Error() string {
	return fmt.Sprintf("store: invalid address %q: %s", e.Address, e.Reason)
}

func addrErr(s, reason string) error {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return &AddressError{Address: s, Reason: reason}
}

// ParseAddress parses an addr-spec as it appears inside an SMTP path
// (without angle brackets) or as stored in the directory.
//
// Beyond RFC 5321 syntax and length limits it refuses the forms that
// have been used to trick relays into forwarding mail elsewhere: source
// routes ("@a,@b:user@c"), the percent hack ("user%other@domain"), UUCP
// bang paths ("a!b@c"), more than one unquoted "@" ("user@x@y") and
// quoted local parts that hide an "@", "%" or "!". Control characters
// and invalid UTF-8 are refused; UTF-8 local parts (RFC 6531) are
// accepted and normalised to NFC. Domains are checked and mapped with
// IDNA 2008 (UTS #46 lookup profile), so "Bücher.EXAMPLE" and
// "xn--bcher-kva.example" are the same domain.
func ParseAddress(s string) (Address, error) {
	if s == "" {
		return Address{}, addrErr(s, "empty address")
	}
	if len(s) > maxAddressLen {
		return Address{}, addrErr(s, "address too long")
	}
	if !utf8.ValidString(s) {
		return Address{}, addrErr(s, "invalid UTF-8")
	}
	if s[0] == '@' {
		return Address{}, addrErr(s, "source routes are not accepted")
	}
	var local, rest string
	if s[0] == '"' {
		l, n, err := parseQuoted(s)
		if err != nil {
			return Address{}, addrErr(s, err.Error())
		}
		local, rest = l, s[n:]
	} else {
		i := strings.IndexByte(s, '@')
		if i < 0 {
			return Address{}, addrErr(s, "missing @domain")
		}
		local, rest = s[:i], s[i:]
		if err := checkDotAtom(local); err != nil {
			return Address{}, addrErr(s, err.Error())
		}
	}
	if !strings.HasPrefix(rest, "@") {
		return Address{}, addrErr(s, "missing @domain")
	}
	domainPart := rest[1:]
	if strings.IndexByte(domainPart, '@') >= 0 {
		return Address{}, addrErr(s, "more than one @")
	}
	if local == "" {
		return Address{}, addrErr(s, "empty local part")
	}
	if strings.ContainsAny(local, "@%!") {
		return Address{}, addrErr(s, "local part contains @, % or ! (relay hack)")
	}
	local = norm.NFC.String(local)
	if len(local) > maxLocalLen {
		return Address{}, addrErr(s, "local part too long")
	}
	domain, err := parseDomainOrLiteral(domainPart)
	if err != nil {
		return Address{}, addrErr(s, err.Error())
	}
	return Address{Local: local, Domain: domain}, nil
}

// errString is a constant error used for parse failures before they are
// wrapped in an AddressError.
type errString string

func (e errString) Error() string { return string(e) }

// parseQuoted parses a quoted-string at the start of s and returns its
// content without quoting and the number of bytes consumed.
func parseQuoted(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), i + 1, nil
		case c == '\\':
			i++
			if i >= len(s) || s[i] < 32 || s[i] == 127 {
				return "", 0, errString("bad quoted-pair")
			}
			b.WriteByte(s[i])
		case c < 32 || c == 127:
			return "", 0, errString("control character in local part")
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errString("unterminated quoted string")
}

// isAtext reports whether r may appear in an RFC 5322 atom, extended by
// RFC 6531 to any non-ASCII character.
func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r >= 0x80:
		return r >= 0xa0 // no C1 controls
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

func checkDotAtom(s string) error {
	if s == "" {
		return errString("empty local part")
	}
	if s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return errString("misplaced dot in local part")
	}
	for _, r := range s {
		if r == '.' {
			continue
		}
		if r == '@' || r == '"' {
			return errString("more than one @")
		}
		if !isAtext(r) {
			return errString(fmt.Sprintf("character %q not allowed in local part", r))
		}
	}
	return nil
}

// idnaProfile maps and validates domains for lookup: case folding, NFC,
// IDNA 2008 validity and the LDH rule for host names.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
	idna.Transitional(false),
)

// ParseDomain normalises a domain name: IDNA 2008 mapping and validation,
// lower case, Unicode form. It is the form Address.Domain and the
// directory use.
func ParseDomain(s string) (string, error) {
	d, err := parseDomain(s)
	if err != nil {
		return "", &AddressError{Address: s, Reason: err.Error()}
	}
	return d, nil
}

func parseDomain(s string) (string, error) {
	if s == "" {
		return "", errString("empty domain")
	}
	if len(s) > maxDomainLen {
		return "", errString("domain too long")
	}
	if strings.HasSuffix(s, ".") {
		return "", errString("domain ends with a dot")
	}
	if d, ok := plainDomain(s); ok {
		return d, nil
	}
	a, err := idnaProfile.ToASCII(s)
	if err != nil {
		return "", errString("invalid domain")
	}
	u, err := idnaProfile.ToUnicode(a)
	if err != nil {
		return "", errString("invalid domain")
	}
	return u, nil
}

// plainDomain is the fast path of parseDomain for the common case, a
// host name of ASCII letters, digits and hyphens with no A-label, whose
// IDNA mapping is just lower-casing. It reports false when the full
// IDNA processing must decide.
func plainDomain(s string) (string, bool) {
	if len(s) > 253 {
		return "", false
	}
	label, upper := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z':
			upper = true
		case c == '-':
			// Leading or trailing hyphens, and "??--" (reserved for
			// A-labels like "xn--"), need the full check.
			if label == 0 || i+1 == len(s) || s[i+1] == '.' || label == 2 || label == 3 {
				return "", false
			}
		case c == '.':
			if label == 0 {
				return "", false
			}
			label = 0
			continue
		default:
			return "", false
		}
		label++
		if label > 63 {
			return "", false
		}
	}
	if label == 0 {
		return "", false
	}
	if upper {
		s = strings.ToLower(s)
	}
	return s, true
}

func parseDomainOrLiteral(s string) (string, error) {
	if !strings.HasPrefix(s, "[") {
		return parseDomain(s)
	}
	if !strings.HasSuffix(s, "]") {
		return "", errString("unterminated address literal")
	}
	lit := s[1 : len(s)-1]
	if v6, ok := strings.CutPrefix(lit, "IPv6:"); ok {
		ip, err := netip.ParseAddr(v6)
		if err != nil || !ip.Is6() || ip.Zone() != "" || ip.Is4In6() {
			return "", errString("invalid IPv6 address literal")
		}
		return "[IPv6:" + ip.String() + "]", nil
	}
	ip, err := netip.ParseAddr(lit)
	if err != nil || !ip.Is4() {
		return "", errString("invalid address literal")
	}
	return "[" + ip.String() + "]", nil
}

// String returns the address in its canonical form, with the domain in
// Unicode and the local part quoted when it is not a dot-atom.
func (a Address) String() string {
	return quoteLocal(a.Local) + "@" + a.Domain
}

// ASCII returns the address with the domain in A-labels, as needed on a
// connection without SMTPUTF8. Local parts are never converted; use
// NeedsSMTPUTF8 to know whether the result is still non-ASCII.
func (a Address) ASCII() string {
	return quoteLocal(a.Local) + "@" + DomainASCII(a.Domain)
}

// NeedsSMTPUTF8 reports whether the address can only be sent with the
// SMTPUTF8 extension (RFC 6531): its local part is not ASCII.
func (a Address) NeedsSMTPUTF8() bool {
	for i := 0; i < len(a.Local); i++ {
		if a.Local[i] >= 0x80 {
			return true
		}
	}
	return false
}

// Key returns the form used to compare addresses: local part case-folded
// (FoldLocal), domain as normalised. Two addresses with the same Key are
// the same mailbox for this package.
func (a Address) Key() string {
	return FoldLocal(a.Local) + "@" + a.Domain
}

// Canonical returns the address with its local part case-folded
// (FoldLocal): the form the directory stores keys in when the case typed
// differs from it in more than ASCII letters.
func (a Address) Canonical() Address {
	return Address{Local: FoldLocal(a.Local), Domain: a.Domain}
}

// FoldLocal folds the case of a local part with Unicode simple case
// folding (CaseFolding.txt, statuses C and S): "JOSÉ", "José" and "josé"
// fold alike, ASCII letters fold to lower case, and nothing else is
// equated: no accent is removed ("jose" is not "josé"), no letter becomes
// two ("ß" folds with the capital "ẞ" but never with "ss", which full
// case folding would do), and the Turkic mappings are left out, as they
// depend on the language: dotless "ı" and dotted capital "İ" fold only to
// themselves, never to "i".
func FoldLocal(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 {
			return strings.Map(foldRune, s)
		} else if 'A' <= c && c <= 'Z' {
			return foldASCII(s)
		}
	}
	return s
}

// foldASCII lower-cases a string whose first upper-case ASCII letter
// comes before any non-ASCII byte.
func foldASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 0x80 {
			return strings.Map(foldRune, s)
		}
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// foldRune returns the member of r's simple case folding orbit
// (unicode.SimpleFold) that stands for the whole orbit: the lower case
// of its upper case when that is in the orbit (it is for every orbit of
// more than one letter, which TestFoldRune checks), else r itself.
func foldRune(r rune) rune {
	if r < 0x80 {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	c := unicode.ToLower(unicode.ToUpper(r))
	if c == r {
		return r
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f == c {
			return c
		}
	}
	return r
}

// DomainASCII returns the A-label form of a normalised domain (the form
// DNS uses). An address literal or an invalid name is returned unchanged.
func DomainASCII(domain string) string {
	if strings.HasPrefix(domain, "[") || isLowerASCII(domain) {
		// A lower-case ASCII name is already in A-label form: the
		// conversion would return it unchanged.
		return domain
	}
	a, err := idnaProfile.ToASCII(domain)
	if err != nil {
		return domain
	}
	return a
}

// isLowerASCII reports whether s is ASCII without upper-case letters.
func isLowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func quoteLocal(l string) string {
	if checkDotAtom(l) == nil {
		return l
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(l); i++ {
		if l[i] == '"' || l[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(l[i])
	}
	b.WriteByte('"')
	return b.String()
}

package dnsauth

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SPFRecord is a parsed SPF record (RFC 7208 section 4.6 and the ABNF of
// section 12). Domain specifications keep their macros unexpanded.
type SPFRecord struct {
	Directives []SPFDirective
	Redirect   string        // domain-spec of redirect=, "" when absent
	Exp        string        // domain-spec of exp=, "" when absent
	Unknown    []SPFModifier // other modifiers, kept but without effect
}

// SPFDirective is one mechanism with its qualifier.
type SPFDirective struct {
	Qualifier byte   // '+', '-', '~' or '?'
	Mechanism string // all, include, a, mx, ptr, ip4, ip6 or exists (lower case)
	Domain    string // domain-spec for include, a, mx, ptr, exists; "" when absent
	IP        netip.Prefix
	Mask4     int // a and mx: IPv4 prefix length, -1 when absent
	Mask6     int // a and mx: IPv6 prefix length, -1 when absent
}

// SPFModifier is a modifier SPF does not define (RFC 7208 section 6).
type SPFModifier struct {
	Name, Value string
}

// ErrSPFSyntax is wrapped by every error ParseSPF returns.
var ErrSPFSyntax = errors.New("spf: syntax error")

func spfErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSPFSyntax, fmt.Sprintf(format, args...))
}

// IsSPFRecord reports whether a TXT string is an SPF record: version
// "v=spf1" alone or followed by a space (RFC 7208 section 4.5).
func IsSPFRecord(txt string) bool {
	if len(txt) < 6 || !strings.EqualFold(txt[:6], "v=spf1") {
		return false
	}
	return len(txt) == 6 || txt[6] == ' '
}

// maxSPFRecordLen bounds what ParseSPF accepts; a DNS TXT answer cannot be
// much longer than this anyway.
const maxSPFRecordLen = 8192

// ParseSPF parses an SPF record strictly: any syntax error anywhere makes
// the whole record invalid, which RFC 7208 section 4.6 requires to be
// detected before evaluation starts (a permerror, even when an earlier
// mechanism would have matched).
func ParseSPF(txt string) (*SPFRecord, error) {
	if len(txt) > maxSPFRecordLen {
		return nil, spfErrorf("record longer than %d bytes", maxSPFRecordLen)
	}
	if !IsSPFRecord(txt) {
		return nil, spfErrorf("record does not start with v=spf1")
	}
	for i := 0; i < len(txt); i++ {
		if c := txt[i]; c < ' ' || c > '~' {
			return nil, spfErrorf("byte 0x%02x at offset %d: only printable US-ASCII is allowed", c, i)
		}
	}
	rec := &SPFRecord{}
	for _, term := range strings.Split(txt[6:], " ") {
		if term == "" {
			continue
		}
		if err := rec.parseTerm(term); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// modifierName returns the name of a modifier term, "" when term is not one.
func modifierName(term string) string {
	if term == "" || !isAlpha(term[0]) {
		return ""
	}
	for i := 1; i < len(term); i++ {
		c := term[i]
		switch {
		case c == '=':
			return term[:i]
		case isAlpha(c) || isDigit(c) || c == '-' || c == '_' || c == '.':
		default:
			return ""
		}
	}
	return ""
}

func (rec *SPFRecord) parseTerm(term string) error {
	if name := modifierName(term); name != "" {
		value := term[len(name)+1:]
		switch strings.ToLower(name) {
		case "redirect":
			if rec.Redirect != "" {
				return spfErrorf("redirect= given twice")
			}
			if err := checkDomainSpec(value); err != nil {
				return err
			}
			rec.Redirect = value
		case "exp":
			if rec.Exp != "" {
				return spfErrorf("exp= given twice")
			}
			if err := checkDomainSpec(value); err != nil {
				return err
			}
			rec.Exp = value
		default:
			if err := checkMacroString(value, false); err != nil {
				return err
			}
			rec.Unknown = append(rec.Unknown, SPFModifier{Name: name, Value: value})
		}
		return nil
	}
	d := SPFDirective{Qualifier: '+', Mask4: -1, Mask6: -1}
	switch term[0] {
	case '+', '-', '~', '?':
		d.Qualifier = term[0]
		term = term[1:]
	}
	name, arg, hasArg := strings.Cut(term, ":")
	if !hasArg {
		// "a/24" and "mx//64": the CIDR follows the name directly.
		if i := strings.IndexByte(term, '/'); i >= 0 {
			name, arg = term[:i], term[i:]
		}
	}
	d.Mechanism = strings.ToLower(name)
	var err error
	switch d.Mechanism {
	case "all":
		if arg != "" || hasArg {
			return spfErrorf("all takes no argument")
		}
	case "include", "exists":
		if !hasArg {
			return spfErrorf("%s needs a domain", d.Mechanism)
		}
		if err := checkDomainSpec(arg); err != nil {
			return err
		}
		d.Domain = arg
	case "ptr":
		if hasArg {
			if err := checkDomainSpec(arg); err != nil {
				return err
			}
			d.Domain = arg
		} else if arg != "" {
			return spfErrorf("ptr takes no CIDR length")
		}
	case "a", "mx":
		arg, d.Mask4, d.Mask6, err = splitDualCIDR(arg)
		if err != nil {
			return err
		}
		if hasArg {
			if err := checkDomainSpec(arg); err != nil {
				return err
			}
			d.Domain = arg
		} else if arg != "" {
			return spfErrorf("%q: unexpected text", term)
		}
	case "ip4", "ip6":
		if !hasArg {
			return spfErrorf("%s needs an address", d.Mechanism)
		}
		if d.IP, err = parseSPFNetwork(d.Mechanism, arg); err != nil {
			return err
		}
	default:
		return spfErrorf("unknown mechanism %q", term)
	}
	rec.Directives = append(rec.Directives, d)
	return nil
}

// parseCIDRLen parses a prefix length without leading zeros (ABNF
// ip4-cidr-length and ip6-cidr-length).
func parseCIDRLen(s string, max int) (int, error) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, spfErrorf("invalid CIDR length %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > max {
		return 0, spfErrorf("invalid CIDR length %q", s)
	}
	return n, nil
}

// splitDualCIDR removes a trailing dual-cidr-length ("/24", "//64",
// "/24//64") from arg. Only a trailing one counts: a domain-spec may itself
// contain "/" (ABNF macro-literal).
func splitDualCIDR(arg string) (rest string, m4, m6 int, err error) {
	m4, m6 = -1, -1
	rest = arg
	num, double, ok := trailingCIDR(rest)
	if ok && double {
		if m6, err = parseCIDRLen(num, 128); err != nil {
			return rest, m4, m6, err
		}
		rest = rest[:len(rest)-len(num)-2]
		num, double, ok = trailingCIDR(rest)
	}
	if ok && !double {
		if m4, err = parseCIDRLen(num, 32); err != nil {
			return rest, m4, m6, err
		}
		rest = rest[:len(rest)-len(num)-1]
	} else if ok {
		return rest, m4, m6, spfErrorf("two IPv6 CIDR lengths")
	}
	return rest, m4, m6, nil
}

// trailingCIDR finds a final "/digits" or "//digits" in s.
func trailingCIDR(s string) (num string, double, ok bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 || i == len(s)-1 {
		return "", false, false
	}
	for j := i + 1; j < len(s); j++ {
		if !isDigit(s[j]) {
			return "", false, false
		}
	}
	return s[i+1:], i > 0 && s[i-1] == '/', true
}

func parseSPFNetwork(mech, arg string) (netip.Prefix, error) {
	addr, cidr, hasCIDR := strings.Cut(arg, "/")
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Zone() != "" {
		return netip.Prefix{}, spfErrorf("%s: invalid address %q", mech, addr)
	}
	bits := 32
	if mech == "ip4" {
		// ABNF ip4-network is a dotted quad; an IPv4-mapped IPv6 text is not.
		if !ip.Is4() {
			return netip.Prefix{}, spfErrorf("ip4: %q is not an IPv4 address", addr)
		}
	} else {
		if !strings.Contains(addr, ":") {
			return netip.Prefix{}, spfErrorf("ip6: %q is not an IPv6 address", addr)
		}
		bits = 128
	}
	n := bits
	if hasCIDR {
		if n, err = parseCIDRLen(cidr, bits); err != nil {
			return netip.Prefix{}, err
		}
	}
	return netip.PrefixFrom(ip, n), nil
}

// checkDomainSpec checks the ABNF of domain-spec: a macro-string ending
// either in a macro-expand or in "." toplabel [ "." ], the top label being
// alphanumeric with a letter somewhere or an inner hyphen (RFC 7208
// section 7.1), which rules out IP literals and numeric TLDs.
func checkDomainSpec(s string) error {
	if s == "" {
		return spfErrorf("empty domain-spec")
	}
	if err := checkMacroString(s, false); err != nil {
		return err
	}
	if endsInMacroExpand(s) {
		return nil
	}
	t := strings.TrimSuffix(s, ".")
	i := strings.LastIndexByte(t, '.')
	if i < 0 {
		return spfErrorf("domain-spec %q has no top-level label", s)
	}
	if !validTopLabel(t[i+1:]) {
		return spfErrorf("domain-spec %q: invalid top-level label %q", s, t[i+1:])
	}
	return nil
}

// endsInMacroExpand reports whether s ends in a macro-expand: "%{...}",
// "%%", "%_" or "%-" (s is a valid macro-string).
func endsInMacroExpand(s string) bool {
	if strings.HasSuffix(s, "}") {
		return true
	}
	// Count the run of '%' before the last byte: an odd run means the last
	// byte is escaped.
	n := 0
	for i := len(s) - 2; i >= 0 && s[i] == '%'; i-- {
		n++
	}
	return n%2 == 1
}

// validTopLabel implements ABNF toplabel.
func validTopLabel(l string) bool {
	if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	letter := false
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case isAlpha(c):
			letter = true
		case isDigit(c):
		case c == '-':
			letter = true // a hyphenated label is not all-numeric
		default:
			return false
		}
	}
	return letter
}

// checkMacroString checks the ABNF of macro-string (explain-string when
// exp is set, which also allows the letters c, r and t and spaces).
func checkMacroString(s string, exp bool) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if c < '!' || c > '~' {
				if exp && c == ' ' {
					continue
				}
				return spfErrorf("invalid character 0x%02x in %q", c, s)
			}
			continue
		}
		i++
		if i == len(s) {
			return spfErrorf("%q ends with a lone %%", s)
		}
		switch s[i] {
		case '%', '_', '-':
			continue
		case '{':
		default:
			return spfErrorf("%%%c in %q is not a macro", s[i], s)
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return spfErrorf("unterminated macro in %q", s)
		}
		if _, err := parseMacro(s[i+1:i+end], exp); err != nil {
			return err
		}
		i += end
	}
	return nil
}

// spfMacro is one parsed %{...} expansion.
type spfMacro struct {
	letter  byte // lower case
	upper   bool // URL-escape the result
	digits  int  // keep this many right-hand parts, 0 for all
	reverse bool
	delims  string
}

// parseMacro parses the inside of %{...}: macro-letter transformers
// *delimiter.
func parseMacro(s string, exp bool) (spfMacro, error) {
	var m spfMacro
	if s == "" {
		return m, spfErrorf("empty macro")
	}
	c := s[0]
	m.upper = c >= 'A' && c <= 'Z'
	m.letter = c | 0x20
	switch m.letter {
	case 's', 'l', 'o', 'd', 'i', 'p', 'h', 'v':
	case 'c', 'r', 't':
		if !exp {
			return m, spfErrorf("macro letter %c is allowed only in exp text", c)
		}
	default:
		return m, spfErrorf("unknown macro letter %q", c)
	}
	i := 1
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i > 1 {
		n, err := strconv.Atoi(s[1:i])
		if err != nil || n == 0 || n > 128 {
			return m, spfErrorf("invalid macro digits %q", s[1:i])
		}
		m.digits = n
	}
	if i < len(s) && s[i]|0x20 == 'r' {
		m.reverse = true
		i++
	}
	for _, d := range s[i:] {
		if !strings.ContainsRune(".-+,/_=", d) {
			return m, spfErrorf("invalid macro delimiter %q", d)
		}
	}
	m.delims = s[i:]
	if m.delims == "" {
		m.delims = "."
	}
	return m, nil
}

// String formats the record in canonical form, the one to publish.
func (rec *SPFRecord) String() string {
	var b strings.Builder
	b.WriteString("v=spf1")
	for _, d := range rec.Directives {
		b.WriteByte(' ')
		if d.Qualifier != '+' && d.Qualifier != 0 {
			b.WriteByte(d.Qualifier)
		}
		b.WriteString(d.Mechanism)
		switch d.Mechanism {
		case "ip4", "ip6":
			b.WriteByte(':')
			if d.IP.IsSingleIP() {
				b.WriteString(d.IP.Addr().String())
			} else {
				b.WriteString(d.IP.String())
			}
		default:
			if d.Domain != "" {
				b.WriteByte(':')
				b.WriteString(d.Domain)
			}
			if d.Mask4 >= 0 {
				fmt.Fprintf(&b, "/%d", d.Mask4)
			}
			if d.Mask6 >= 0 {
				fmt.Fprintf(&b, "//%d", d.Mask6)
			}
		}
	}
	if rec.Redirect != "" {
		b.WriteString(" redirect=" + rec.Redirect)
	}
	if rec.Exp != "" {
		b.WriteString(" exp=" + rec.Exp)
	}
	for _, m := range rec.Unknown {
		b.WriteString(" " + m.Name + "=" + m.Value)
	}
	return b.String()
}

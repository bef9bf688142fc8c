package dnsauth

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// spfEnv holds what SPF macros expand to (RFC 7208 section 7.3).
type spfEnv struct {
	ip       net.IP
	sender   string // local@domain, "postmaster@helo" for a null sender
	helo     string
	receiver string // r: our host name
	now      time.Time
	resolver Resolver

	ptrDone bool
	ptrName string
}

// maxDomainLen is the longest name DNS carries (RFC 1035 section 2.3.4).
const maxDomainLen = 253

// expand expands the macros of s evaluated for domain. exp selects
// explain-string rules (letters c, r, t allowed, no truncation); otherwise
// the result is a domain name and is cut from the left to 253 bytes
// (section 7.3).
func (e *spfEnv) expand(ctx context.Context, s, domain string, exp bool) (string, error) {
	if err := checkMacroString(s, exp); err != nil {
		return "", err
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
			continue
		case '_':
			b.WriteByte(' ')
			continue
		case '-':
			b.WriteString("%20")
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		m, _ := parseMacro(s[i+1:i+end], exp)
		i += end
		b.WriteString(e.macro(ctx, m, domain))
	}
	out := b.String()
	if !exp {
		out = strings.TrimSuffix(out, ".")
		for len(out) > maxDomainLen {
			j := strings.IndexByte(out, '.')
			if j < 0 {
				return "", spfErrorf("expanded name longer than %d bytes", maxDomainLen)
			}
			out = out[j+1:]
		}
	}
	return out, nil
}

func (e *spfEnv) macro(ctx context.Context, m spfMacro, domain string) string {
	local, senderDomain, _ := strings.Cut(e.sender, "@")
	var v string
	switch m.letter {
	case 's':
		v = e.sender
	case 'l':
		v = local
	case 'o':
		v = senderDomain
	case 'd':
		v = domain
	case 'i':
		v = dottedIP(e.ip)
	case 'c':
		v = e.ip.String()
	case 'p':
		v = e.validatedName(ctx, domain)
	case 'v':
		v = "ip6"
		if e.ip.To4() != nil {
			v = "in-addr"
		}
	case 'h':
		v = e.helo
	case 'r':
		v = e.receiver
		if v == "" {
			v = "unknown"
		}
	case 't':
		v = strconv.FormatInt(e.now.Unix(), 10)
	}
	parts := strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune(m.delims, r) })
	if m.reverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	if m.digits > 0 && m.digits < len(parts) {
		parts = parts[len(parts)-m.digits:]
	}
	v = strings.Join(parts, ".")
	if m.upper {
		v = urlEscapeUnreserved(v)
	}
	return v
}

// urlEscapeUnreserved escapes every byte outside RFC 3986's unreserved set,
// as section 7.3 requires for upper-case macro letters.
func urlEscapeUnreserved(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// dottedIP is the i macro: an IPv4 address as is, an IPv6 address as 32
// dot-separated nibbles.
func dottedIP(ip net.IP) string {
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	var b strings.Builder
	for i, c := range ip.To16() {
		if i > 0 {
			b.WriteByte('.')
		}
		fmt.Fprintf(&b, "%x.%x", c>>4, c&0xf)
	}
	return b.String()
}

// validatedName is the p macro: a reverse name of the client that resolves
// back to it, preferring domain or one of its subdomains, else "unknown"
// (section 7.3; at most 10 names are tried, section 4.6.4).
func (e *spfEnv) validatedName(ctx context.Context, domain string) string {
	if e.ptrDone {
		return e.ptrName
	}
	e.ptrDone = true
	e.ptrName = "unknown"
	names, err := e.resolver.LookupAddr(ctx, e.ip.String())
	if err != nil {
		return e.ptrName
	}
	if len(names) > 10 {
		names = names[:10]
	}
	var any string
	for _, n := range names {
		n = strings.TrimSuffix(n, ".")
		if !forwardConfirms(ctx, e.resolver, n, e.ip) {
			continue
		}
		if isSubdomainOf(n, domain) {
			e.ptrName = n
			return n
		}
		if any == "" {
			any = n
		}
	}
	if any != "" {
		e.ptrName = any
	}
	return e.ptrName
}

// forwardConfirms reports whether host has ip among its addresses.
func forwardConfirms(ctx context.Context, r Resolver, host string, ip net.IP) bool {
	addrs, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// isSubdomainOf reports whether name is domain or below it, on label
// boundaries, ignoring case and trailing dots.
func isSubdomainOf(name, domain string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	return name == domain || strings.HasSuffix(name, "."+domain)
}

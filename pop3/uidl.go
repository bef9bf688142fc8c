package pop3

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mailagent/mailagent/maildir"
)

// DefaultUIDLFormat is Dovecot 2.3's default pop3_uidl_format for
// Maildir: the IMAP UID and the UIDVALIDITY, eight hex digits each.
const DefaultUIDLFormat = "%08Xu%08Xv"

// uidlFormat is a parsed pop3_uidl_format.
type uidlFormat []uidlPart

// uidlPart is a literal (variable 0) or one variable with Dovecot's
// var_expand modifiers.
type uidlPart struct {
	literal  string
	variable byte // 'u', 'v', 'f' or 0 for a literal
	zero     bool // pad with zeros to width
	width    int  // with zero: minimum width; without: maximum
	mods     string
}

// parseUIDLFormat parses the subset of Dovecot's %-variables a Maildir
// can answer from its index: "%[0][width][LUX...]{u|v|f|g|%}" and the
// long forms %{uid}, %{uidvalidity}, %{filename} and %{guid}.
func parseUIDLFormat(f string) (uidlFormat, error) {
	var out uidlFormat
	var lit strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			lit.WriteByte(f[i])
			continue
		}
		var p uidlPart
		i++
		if i < len(f) && f[i] == '0' {
			p.zero = true
			i++
		}
		for i < len(f) && f[i] >= '0' && f[i] <= '9' {
			p.width = p.width*10 + int(f[i]-'0')
			if p.width > 70 {
				return nil, fmt.Errorf("pop3: UIDL format %q: width above 70, RFC 1939's longest unique-id", f)
			}
			i++
		}
		for i < len(f) && strings.IndexByte("LUX", f[i]) >= 0 {
			p.mods += string(f[i])
			i++
		}
		if i >= len(f) {
			return nil, fmt.Errorf("pop3: UIDL format %q ends inside a variable", f)
		}
		name := string(f[i])
		if f[i] == '{' {
			end := strings.IndexByte(f[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("pop3: UIDL format %q: unclosed %%{", f)
			}
			name = f[i+1 : i+end]
			i += end
		}
		switch name {
		case "%":
			lit.WriteByte('%')
			continue
		case "u", "uid":
			p.variable = 'u'
		case "v", "uidvalidity":
			p.variable = 'v'
		case "f", "filename", "g", "guid":
			// A Maildir message's GUID is its base file name in Dovecot.
			p.variable = 'f'
		default:
			return nil, fmt.Errorf("pop3: UIDL format %q: variable %q is not supported", f, name)
		}
		if lit.Len() > 0 {
			out = append(out, uidlPart{literal: lit.String()})
			lit.Reset()
		}
		out = append(out, p)
	}
	if lit.Len() > 0 {
		out = append(out, uidlPart{literal: lit.String()})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pop3: UIDL format %q is empty", f)
	}
	return out, nil
}

// format returns the unique-id listing of m in a folder of UIDVALIDITY
// uidValidity.
func (f uidlFormat) format(uidValidity uint32, m *maildir.Message) string {
	var b strings.Builder
	for _, p := range f {
		if p.variable == 0 {
			b.WriteString(p.literal)
			continue
		}
		var v string
		switch p.variable {
		case 'u':
			v = strconv.FormatUint(uint64(m.UID), 10)
		case 'v':
			v = strconv.FormatUint(uint64(uidValidity), 10)
		case 'f':
			v = m.Key
		}
		for _, mod := range p.mods {
			switch mod {
			case 'L':
				v = strings.ToLower(v)
			case 'U':
				v = strings.ToUpper(v)
			case 'X':
				// Dovecot's %X prints the decimal value in lower-case
				// hex ("%llx"); a non-number reads as 0.
				n, _ := strconv.ParseUint(v, 10, 64)
				v = strconv.FormatUint(n, 16)
			}
		}
		switch {
		case p.zero:
			for i := len(v); i < p.width; i++ {
				b.WriteByte('0')
			}
		case p.width > 0 && len(v) > p.width:
			v = v[:p.width]
		}
		b.WriteString(v)
	}
	return b.String()
}

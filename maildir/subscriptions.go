package maildir

import (
	"bytes"
	"strings"
)

// subscriptionsName is Dovecot's subscription file in the Maildir root.
const subscriptionsName = "subscriptions"

// subsHeader starts a version-2 subscription file; hierarchy levels of a
// name are then separated by tabs, and tab, CR, LF and \001 inside a level
// are escaped as \001 followed by 't', 'r', 'n', '1'.
const subsHeader = "V\t2\n\n"

// maxSubscriptions bounds what is read from a subscriptions file.
const maxSubscriptions = 10000

func parseSubscriptions(data []byte) []string {
	v2 := bytes.HasPrefix(data, []byte(subsHeader))
	if v2 {
		data = data[len(subsHeader):]
	}
	var out []string
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		if len(line) == 0 || len(out) >= maxSubscriptions {
			continue
		}
		name := string(line)
		if v2 {
			levels := strings.Split(name, "\t")
			for i, l := range levels {
				levels[i] = tabUnescape(l)
			}
			name = strings.Join(levels, string(Delimiter))
		}
		if isInbox(name) {
			name = "INBOX"
		}
		out = append(out, name)
	}
	return out
}

func marshalSubscriptions(names []string) []byte {
	var b bytes.Buffer
	b.WriteString(subsHeader)
	for _, n := range names {
		for i, l := range strings.Split(n, string(Delimiter)) {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(tabEscape(l))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

var (
	tabEscaper   = strings.NewReplacer("\001", "\0011", "\t", "\001t", "\r", "\001r", "\n", "\001n")
	tabUnescaper = strings.NewReplacer("\0011", "\001", "\001t", "\t", "\001r", "\r", "\001n", "\n")
)

func tabEscape(s string) string   { return tabEscaper.Replace(s) }
func tabUnescape(s string) string { return tabUnescaper.Replace(s) }

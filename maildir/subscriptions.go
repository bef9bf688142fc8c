package maildir

import (
	"bytes"
	"strings"
)

// subscriptionsName is Dovecot's subscription file in the Maildir root.
const subscriptionsName = "subscriptions"

// subsHeader starts a version-2 subscription file; hierarchy levels of a
// name are then separated by tabs, each level in modified UTF-7 (Dovecot
// stores the on-disk name), and tab, CR, LF and \001 inside a level are
// escaped as \001 followed by 't', 'r', 'n', '1'.
const subsHeader = "V\t2\n\n"

// maxSubscriptions bounds what is read from a subscriptions file, and
// the names Maildir.Subscribe lets it hold (existing folders or not):
// one more is refused with ErrTooManySubscriptions.
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
		var levels []string
		if v2 {
			levels = strings.Split(string(line), "\t")
		} else {
			levels = strings.Split(string(line), string(Delimiter))
		}
		for i, l := range levels {
			if v2 {
				l = tabUnescape(l)
			}
			// Dovecot writes levels in modified UTF-7; accept UTF-8 too.
			if dec, err := decodeMUTF7(l); err == nil {
				l = dec
			}
			levels[i] = l
		}
		name := strings.Join(levels, string(Delimiter))
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
			b.WriteString(tabEscape(encodeMUTF7(l)))
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

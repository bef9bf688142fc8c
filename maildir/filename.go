package maildir

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// infoSep separates a file's unique base name from its info ("2,FLAGS").
const infoSep = ":2,"

// namer generates unique base names for one process.
type namer struct {
	pid  string
	host string
	seq  atomic.Uint64
}

func newNamer(pid int, host string) *namer {
	return &namer{pid: strconv.Itoa(pid), host: sanitizeHost(host)}
}

// sanitizeHost escapes the characters the Maildir specification says must
// not appear in a host name part, plus ',' which starts the size fields.
func sanitizeHost(h string) string {
	if h == "" {
		h = "localhost"
	}
	r := strings.NewReplacer("/", `\057`, ":", `\072`, ",", `\054`)
	return r.Replace(h)
}

// next returns "<secs>.M<usecs>P<pid>Q<n>.<host>": unique in this process
// by the counter, across processes by the pid, across hosts by the name.
func (n *namer) next(now time.Time) string {
	q := n.seq.Add(1)
	var b strings.Builder
	b.Grow(48 + len(n.host))
	b.WriteString(strconv.FormatInt(now.Unix(), 10))
	b.WriteString(".M")
	b.WriteString(strconv.Itoa(now.Nanosecond() / 1000))
	b.WriteByte('P')
	b.WriteString(n.pid)
	b.WriteByte('Q')
	b.WriteString(strconv.FormatUint(q, 10))
	b.WriteByte('.')
	b.WriteString(n.host)
	return b.String()
}

// withSizes appends Dovecot's ",S=<size>,W=<vsize>" fields.
func withSizes(base string, size, vsize int64) string {
	return base + ",S=" + strconv.FormatInt(size, 10) + ",W=" + strconv.FormatInt(vsize, 10)
}

// splitFilename splits a file name into its base (the unique part with
// size fields, the key in dovecot-uidlist) and its info flags. hasInfo is
// false for names without ":2," (typical in new/).
func splitFilename(name string) (base, flags string, hasInfo bool) {
	i := strings.Index(name, infoSep)
	if i < 0 {
		// Dovecot tolerates other info versions; keep them with the base.
		if j := strings.IndexByte(name, ':'); j >= 0 {
			return name[:j], "", false
		}
		return name, "", false
	}
	return name[:i], name[i+len(infoSep):], true
}

var errBadFilename = errors.New("maildir: malformed message file name")

// parseSizes extracts ",S=" and ",W=" from a base name; -1 when absent.
func parseSizes(base string) (size, vsize int64) {
	size, vsize = -1, -1
	i := strings.IndexByte(base, ',')
	if i < 0 {
		return
	}
	for _, f := range strings.Split(base[i+1:], ",") {
		if len(f) < 3 || f[1] != '=' {
			continue
		}
		v, err := strconv.ParseInt(f[2:], 10, 64)
		if err != nil || v < 0 {
			continue
		}
		switch f[0] {
		case 'S':
			size = v
		case 'W':
			vsize = v
		}
	}
	return
}

// validBase reports whether a directory entry can be a message file: not
// hidden, no path or control characters, and a sane length.
func validBase(name string) bool {
	if name == "" || name[0] == '.' || len(name) > maxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == '/' || c == 0x7f {
			return false
		}
	}
	return true
}

// System flags and their Maildir info letters, in letter order.
var sysFlagLetters = [...]struct {
	letter byte
	flag   string
}{
	{'D', FlagDraft},
	{'F', FlagFlagged},
	{'R', FlagAnswered},
	{'S', FlagSeen},
	{'T', FlagDeleted},
}

func sysFlagLetter(flag string) byte {
	for _, f := range sysFlagLetters {
		if strings.EqualFold(f.flag, flag) {
			return f.letter
		}
	}
	return 0
}

// normInfo returns the info letters sorted and without duplicates, as the
// Maildir specification requires them in file names.
func normInfo(info string) string {
	b := []byte(info)
	slices.Sort(b)
	b = slices.Compact(b)
	return string(b)
}

// flagsFromInfo maps info letters to IMAP flags; keyword letters a–z are
// resolved through kw (dovecot-keywords), unknown letters are dropped from
// the IMAP view but kept in the file name.
func flagsFromInfo(info string, kw []string) []string {
	var out []string
	for i := 0; i < len(info); i++ {
		c := info[i]
		switch {
		case c >= 'A' && c <= 'Z':
			for _, f := range sysFlagLetters {
				if f.letter == c {
					out = append(out, f.flag)
				}
			}
		case c >= 'a' && c <= 'z':
			if k := int(c - 'a'); k < len(kw) && kw[k] != "" {
				out = append(out, kw[k])
			}
		}
	}
	return out
}

// validKeyword reports whether kw is an IMAP flag-keyword atom (RFC 3501
// atom without atom-specials, and no backslash).
func validKeyword(kw string) bool {
	if kw == "" || len(kw) > 128 {
		return false
	}
	for i := 0; i < len(kw); i++ {
		c := kw[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// compareKeys orders base names as Dovecot orders new messages before
// giving them UIDs: by the seconds, then the microseconds ("M<usecs>")
// compared as numbers, then by the whole name. A plain string sort would
// put "M999" after "M1000" and number two deliveries of one second
// against their order.
func compareKeys(a, b string) int {
	as, ar, aok := leadingUint(a)
	bs, br, bok := leadingUint(b)
	if !aok || !bok {
		return strings.Compare(a, b)
	}
	if c := cmp.Compare(as, bs); c != 0 {
		return c
	}
	au, _, aok := leadingUint(strings.TrimPrefix(ar, ".M"))
	bu, _, bok := leadingUint(strings.TrimPrefix(br, ".M"))
	if aok && bok && strings.HasPrefix(ar, ".M") && strings.HasPrefix(br, ".M") {
		if c := cmp.Compare(au, bu); c != 0 {
			return c
		}
	}
	return strings.Compare(a, b)
}

// leadingUint splits s into its leading decimal number and the rest.
func leadingUint(s string) (n uint64, rest string, ok bool) {
	i := 0
	for i < len(s) && i < 19 && s[i] >= '0' && s[i] <= '9' {
		n = n*10 + uint64(s[i]-'0')
		i++
	}
	return n, s[i:], i > 0
}

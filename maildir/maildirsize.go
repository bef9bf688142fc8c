package maildir

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// maildirsizeName is the Maildir++ quota file in the Maildir root.
const maildirsizeName = "maildirsize"

// maildirsizeMax is the size beyond which Maildir++ readers recalculate
// the file instead of summing its lines.
const maildirsizeMax = 5120

var errBadMaildirsize = errors.New("maildir: corrupt maildirsize")

// parseMaildirsize reads the limit line and sums the delta lines.
func parseMaildirsize(data []byte) (QuotaUsage, error) {
	var u QuotaUsage
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return u, errBadMaildirsize // missing or cut short by a crash
	}
	first, rest, _ := bytes.Cut(data, []byte{'\n'})
	lim, err := parseQuotaDef(string(first))
	if err != nil {
		return u, err
	}
	u.Limit = lim
	lines := 0
	for line := range bytes.SplitSeq(rest, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		f := strings.Fields(string(line))
		if len(f) != 2 {
			return u, errBadMaildirsize
		}
		b, err1 := strconv.ParseInt(f[0], 10, 64)
		c, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || b > 1<<50 || b < -(1<<50) || c > 1<<40 || c < -(1<<40) {
			return u, errBadMaildirsize
		}
		u.Bytes += b
		u.Messages += c
		lines++
	}
	if lines == 0 || u.Bytes < 0 || u.Messages < 0 {
		return u, errBadMaildirsize
	}
	return u, nil
}

// parseQuotaDef parses "<bytes>S,<count>C" (either part optional).
func parseQuotaDef(s string) (Quota, error) {
	var q Quota
	s = strings.TrimSpace(s)
	if s == "" {
		return q, nil
	}
	for _, part := range strings.Split(s, ",") {
		if len(part) < 2 {
			return q, errBadMaildirsize
		}
		n, err := strconv.ParseInt(part[:len(part)-1], 10, 64)
		if err != nil || n < 0 {
			return q, errBadMaildirsize
		}
		switch part[len(part)-1] {
		case 'S':
			q.Bytes = n
		case 'C':
			q.Messages = n
		default:
			return q, errBadMaildirsize
		}
	}
	return q, nil
}

func formatQuotaDef(q Quota) string {
	var parts []string
	if q.Bytes > 0 {
		parts = append(parts, strconv.FormatInt(q.Bytes, 10)+"S")
	}
	if q.Messages > 0 {
		parts = append(parts, strconv.FormatInt(q.Messages, 10)+"C")
	}
	if len(parts) == 0 {
		return "0S" // Dovecot writes a zero limit meaning "none"
	}
	return strings.Join(parts, ",")
}

func maildirsizeLine(bytes, count int64) string {
	return strconv.FormatInt(bytes, 10) + " " + strconv.FormatInt(count, 10) + "\n"
}

// exceeds reports whether adding size bytes and one message breaks q.
func (q Quota) exceeds(u QuotaUsage, size int64) bool {
	return (q.Bytes > 0 && u.Bytes+size > q.Bytes) || (q.Messages > 0 && u.Messages+1 > q.Messages)
}

package imap

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
)

// cmdSort serves SORT and UID SORT (RFC 5256), with SORT=DISPLAY's
// DISPLAYFROM and DISPLAYTO (RFC 5957) and ESORT's RETURN (RFC 5267).
// Messages that compare equal keep sequence order.
func (c *conn) cmdSort(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	a := cmd.Args.(*imapwire.Sort)
	found, err := s.matchingIn(a.Charset, a.Criteria)
	if err != nil {
		return okStatus{}, err
	}
	keys := make([]sortKeys, len(found))
	for i, mc := range found {
		keys[i] = sortKeysOf(mc, a.Keys)
	}
	order := make([]int, len(found))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int {
		for k, key := range a.Keys {
			r := keys[x].compare(&keys[y], k)
			if key.Reverse {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return cmp.Compare(found[x].seq, found[y].seq)
	})
	nums := make([]uint32, len(order))
	for i, j := range order {
		nums[i] = found[j].seq
		if cmd.UID {
			nums[i] = found[j].m.UID
		}
	}
	w := c.w
	if !a.ESearch {
		w.Untagged()
		w.Atom("SORT")
		for _, n := range nums {
			w.SP()
			w.Number(n)
		}
		w.End()
		return okStatus{}, nil
	}
	// ESORT: MIN and MAX are the first and last in sort order, ALL the
	// list in sort order (RFC 5267 section 3.1).
	o := a.Return
	writeESearchStart(w, cmd)
	if len(nums) > 0 {
		if o.ReturnMin {
			w.Atom(" MIN ")
			w.Number(nums[0])
		}
		if o.ReturnMax {
			w.Atom(" MAX ")
			w.Number(nums[len(nums)-1])
		}
		if o.ReturnAll {
			// In sort order, ascending runs as ranges (RFC 5267 section
			// 3.1).
			w.Atom(" ALL ")
			for i := 0; i < len(nums); {
				j := i
				for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
					j++
				}
				if i > 0 {
					w.Atom(",")
				}
				w.Number(nums[i])
				if j > i {
					w.Atom(":")
					w.Number(nums[j])
				}
				i = j + 1
			}
		}
	}
	if o.ReturnCount {
		w.Atom(" COUNT ")
		w.Number(uint32(len(nums)))
	}
	w.End()
	return okStatus{}, nil
}

// sortKeys are one message's values for the SORT keys asked for.
type sortKeys struct {
	strs  []string
	times []time.Time
	nums  []int64
}

func sortKeysOf(mc *matchContext, keys []imapwire.SortKey) sortKeys {
	var k sortKeys
	k.strs = make([]string, len(keys))
	k.times = make([]time.Time, len(keys))
	k.nums = make([]int64, len(keys))
	header := func() bool { return mc.loadHeader() }
	for i, key := range keys {
		switch key.Key {
		case "ARRIVAL":
			k.times[i] = mc.m.InternalDate
		case "DATE":
			if header() {
				k.times[i] = mc.sentDate()
			} else {
				k.times[i] = mc.m.InternalDate
			}
		case "SIZE":
			k.nums[i] = mc.m.VSize
		case "SUBJECT":
			if header() {
				k.strs[i] = baseSubject(mc.header.Get("Subject"))
			}
		case "FROM", "TO", "CC", "DISPLAYFROM", "DISPLAYTO":
			field := strings.TrimPrefix(key.Key, "DISPLAY")
			field = field[:1] + strings.ToLower(field[1:])
			if header() {
				k.strs[i] = addressKey(mc.header, field, strings.HasPrefix(key.Key, "DISPLAY"))
			}
		}
	}
	return k
}

// compare orders two messages by their i'th key.
func (k *sortKeys) compare(o *sortKeys, i int) int {
	if c := k.times[i].Compare(o.times[i]); c != 0 {
		return c
	}
	if c := cmp.Compare(k.nums[i], o.nums[i]); c != 0 {
		return c
	}
	return strings.Compare(k.strs[i], o.strs[i])
}

// addressKey is the first address of a field as SORT compares it: its
// local part (RFC 5256 section 3), or for DISPLAY keys its display name
// or, without one, the address (RFC 5957), case-folded.
func addressKey(h *mail.Header, field string, display bool) string {
	list, err := h.AddressList(field)
	if err != nil || len(list) == 0 {
		return ""
	}
	a := list[0]
	if display {
		if a.Name != "" {
			return foldString(a.Name)
		}
		return foldString(a.Address)
	}
	local, _, _ := strings.Cut(a.Address, "@")
	return foldString(local)
}

// baseSubject is RFC 5256 section 2.1's base subject: decoded, folded,
// white space collapsed, and the reply and forward markers ("Re:",
// "Fwd:", "[list]" blobs, "(fwd)" trailers, "[Fwd: ...]" wrappers)
// taken off.
func baseSubject(raw string) string {
	s := foldString(strings.Join(strings.Fields(decodeHeaderValue(raw)), " "))
	for {
		prev := s
		for {
			t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "(fwd)"))
			if t == s {
				break
			}
			s = t
		}
		for {
			t := stripLeader(s)
			if t == s {
				break
			}
			s = t
		}
		if strings.HasPrefix(s, "[fwd:") && strings.HasSuffix(s, "]") {
			s = strings.TrimSpace(s[len("[fwd:") : len(s)-1])
		}
		if s == prev {
			return s
		}
	}
}

// stripLeader takes one leading "re:", "fw:", "fwd:" (with an optional
// [blob] before the colon) or "[blob]" off s, unless the blob is all
// that is left.
func stripLeader(s string) string {
	s = strings.TrimLeft(s, " \t")
	for _, p := range []string{"re", "fwd", "fw"} {
		if !strings.HasPrefix(s, p) {
			continue
		}
		rest := strings.TrimLeft(s[len(p):], " \t")
		if strings.HasPrefix(rest, "[") {
			if end := strings.IndexByte(rest, ']'); end >= 0 {
				rest = strings.TrimLeft(rest[end+1:], " \t")
			}
		}
		if strings.HasPrefix(rest, ":") {
			return strings.TrimLeft(rest[1:], " \t")
		}
	}
	if strings.HasPrefix(s, "[") {
		if end := strings.IndexByte(s, ']'); end >= 0 {
			if rest := strings.TrimLeft(s[end+1:], " \t"); rest != "" {
				return rest
			}
		}
	}
	return s
}

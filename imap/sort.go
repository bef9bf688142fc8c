package imap

import (
	"cmp"
	"slices"
	"strings"

	"github.com/mailagent/mailagent/imap/internal/imapwire"
)

// sorted returns found, messages matching a SORT, in the order of its
// keys (ties in mailbox order).
func (s *session) sorted(found []*matchContext, sortBy []imapwire.SortKey) []*matchContext {
	if needsHeader(sortBy) {
		s.loadSortFields(found)
	}
	nk := len(sortBy)
	keys := make([]sortKey, len(found)*nk) // message i's keys at i*nk
	for i, mc := range found {
		sortKeysOf(mc, sortBy, keys[i*nk:(i+1)*nk])
	}
	// rest orders two messages whose first keys are equal.
	rest := func(x, y int) int {
		for k := 1; k < nk; k++ {
			r := keys[x*nk+k].compare(&keys[y*nk+k])
			if sortBy[k].Reverse {
				r = -r
			}
			if r != 0 {
				return r
			}
		}
		return cmp.Compare(found[x].seq, found[y].seq)
	}
	sign := 1
	if sortBy[0].Reverse {
		sign = -1
	}
	// The first key is compared where the sort moves the messages, the
	// others (rarely reached) in keys. A date or a size moves as 16
	// bytes without a pointer.
	out := make([]*matchContext, len(found))
	if k := sortBy[0].Key; k == "ARRIVAL" || k == "DATE" || k == "SIZE" {
		type item struct {
			sec  int64
			nsec int32
			i    int32
		}
		items := make([]item, len(found))
		for i := range items {
			items[i] = item{sec: keys[i*nk].sec, nsec: int32(keys[i*nk].nsec), i: int32(i)}
		}
		slices.SortFunc(items, func(x, y item) int {
			if x.sec != y.sec {
				return sign * cmp.Compare(x.sec, y.sec)
			}
			if x.nsec != y.nsec {
				return sign * cmp.Compare(x.nsec, y.nsec)
			}
			return rest(int(x.i), int(y.i))
		})
		for i, it := range items {
			out[i] = found[it.i]
		}
		return out
	}
	type item struct {
		first sortKey
		i     int
	}
	items := make([]item, len(found))
	for i := range items {
		items[i] = item{first: keys[i*nk], i: i}
	}
	slices.SortFunc(items, func(x, y item) int {
		if r := sign * x.first.compare(&y.first); r != 0 {
			return r
		}
		return rest(x.i, y.i)
	})
	for i, it := range items {
		out[i] = found[it.i]
	}
	return out
}

// cmdSort serves SORT and UID SORT (RFC 5256), with SORT=DISPLAY's
// DISPLAYFROM and DISPLAYTO (RFC 5957) and ESORT's RETURN (RFC 5267).
// Messages that compare equal keep sequence order.
func (c *conn) cmdSort(cmd *imapwire.Command) (okStatus, error) {
	s := c.sess
	a := cmd.Args.(*imapwire.Sort)
	if err := checkContextReturn(&a.Return, &a.Context); err != nil {
		return okStatus{}, err
	}
	found, err := s.matchingIn(a.Charset, a.Criteria)
	if err != nil {
		return okStatus{}, err
	}
	found = s.sorted(found, a.Keys)
	nums := make([]uint32, len(found))
	for i, mc := range found {
		nums[i] = mc.seq
		if cmd.UID {
			nums[i] = mc.m.UID
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
			writeNumRuns(w, nums)
		}
	}
	if o.ReturnCount {
		w.Atom(" COUNT ")
		w.Number(uint32(len(nums)))
	}
	if p := a.Context.Partial; p != nil {
		writePartial(w, p, nums)
	}
	w.End()
	if a.Context.Update {
		s.addSortContext(w, cmd, a.Criteria, a.Keys, found)
	}
	return okStatus{}, nil
}

// sortKey is one message's value of one SORT key: a date (unix seconds
// and nanoseconds), a size (sec) or a string.
type sortKey struct {
	sec, nsec int64
	s         string
}

// sortKeysOf fills out with the message's values of keys.
func sortKeysOf(mc *matchContext, keys []imapwire.SortKey, out []sortKey) {
	for i, key := range keys {
		k := &out[i]
		switch key.Key {
		case "ARRIVAL":
			k.sec, k.nsec = mc.m.InternalDate.Unix(), int64(mc.m.InternalDate.Nanosecond())
			continue
		case "DATE":
			d := sentDateOf(mc)
			k.sec, k.nsec = d.Unix(), int64(d.Nanosecond())
			continue
		case "SIZE":
			k.sec = mc.m.VSize
			continue
		}
		f := mc.sortFieldsOf()
		if f == nil {
			continue
		}
		switch key.Key {
		case "SUBJECT":
			k.s = f.subject
		case "FROM":
			k.s = f.from
		case "DISPLAYFROM":
			k.s = f.fromName
		case "TO":
			k.s = f.to
		case "DISPLAYTO":
			k.s = f.toName
		case "CC":
			k.s = f.cc
		}
	}
}

// needsHeader reports whether a SORT key compares header fields.
func needsHeader(keys []imapwire.SortKey) bool {
	for _, k := range keys {
		if k.Key != "ARRIVAL" && k.Key != "SIZE" {
			return true
		}
	}
	return false
}

// compare orders two messages' values of one key.
func (k *sortKey) compare(o *sortKey) int {
	if c := cmp.Compare(k.sec, o.sec); c != 0 {
		return c
	}
	if c := cmp.Compare(k.nsec, o.nsec); c != 0 {
		return c
	}
	return strings.Compare(k.s, o.s)
}

// addressKey is the first address of a field as SORT compares it, read
// as ENVELOPE reads it: its mailbox (local part, RFC 5256 section 3),
// or for DISPLAY keys its decoded display name or, without one, the
// addr-spec (RFC 5957 section 3.1). A group's first "address" is its
// start marker, so a group sorts by its name.
func addressKey(field string, display bool) string {
	if field == "" {
		return ""
	}
	list := parseAddressList(unfold(field))
	if len(list) == 0 {
		return ""
	}
	a := list[0]
	switch {
	case a.Host == "": // a group's start
		return sortFold(a.Mailbox)
	case !display:
		return sortFold(a.Mailbox)
	case a.Name != "":
		return sortFold(a.Name)
	case a.Host == missingDomain:
		return sortFold(a.Mailbox)
	}
	return sortFold(a.Mailbox + "@" + a.Host)
}

// sortFold is the key SORT and THREAD compare strings by: case-folded,
// ASCII letters upper case as the i;ascii-casemap collation maps them
// (RFC 4790 section 9.2), so that "[" and "_" sort before letters as in
// other servers.
func sortFold(s string) string {
	b := []byte(foldString(s))
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// baseSubject is RFC 5256 section 2.1's base subject, sortFold-ed, and
// whether the extraction took off a reply or forward marker (a "Re:" or
// "Fwd:", a "(fwd)" trailer or a "[Fwd: ...]" wrapper), which REFERENCES
// threading needs (RFC 5256 section 3, step 5).
func baseSubject(raw string) (base string, replyOrForward bool) {
	// (1) Decoded, white space runs as one space.
	s := sortFold(strings.Join(strings.Fields(decodeHeaderValue(raw)), " "))
	for {
		// (2) Trailers: "(fwd)" and white space.
		for {
			t := strings.TrimRight(s, " ")
			if u, ok := strings.CutSuffix(t, "(FWD)"); ok {
				t = u
				replyOrForward = true
			}
			if t == s {
				break
			}
			s = t
		}
		// (3) to (5): leaders, then one leading blob if text follows it,
		// until neither is left.
		for {
			t := s
			for {
				n, refwd := subjLeader(t)
				if n == 0 {
					break
				}
				replyOrForward = replyOrForward || refwd
				t = t[n:]
			}
			if n := subjBlob(t); n > 0 && n < len(t) {
				t = t[n:]
			}
			if t == s {
				break
			}
			s = t
		}
		// (6) "[Fwd: ...]" taken off, and again from (2).
		if strings.HasPrefix(s, "[FWD:") && strings.HasSuffix(s, "]") {
			s = s[len("[FWD:") : len(s)-1]
			replyOrForward = true
			continue
		}
		return s, replyOrForward
	}
}

// subjLeader is the length of a subj-leader at the start of s (RFC 5256
// section 5: white space, or blobs then "re", "fw" or "fwd", an
// optional blob and ":"), 0 for none, and whether it was a subj-refwd.
func subjLeader(s string) (n int, refwd bool) {
	if s != "" && s[0] == ' ' {
		return 1, false
	}
	i := 0
	for {
		b := subjBlob(s[i:])
		if b == 0 {
			break
		}
		i += b
	}
	word := ""
	for _, w := range []string{"RE", "FWD", "FW"} {
		if strings.HasPrefix(s[i:], w) {
			word = w
			break
		}
	}
	if word == "" {
		return 0, false
	}
	i += len(word)
	for i < len(s) && s[i] == ' ' {
		i++
	}
	i += subjBlob(s[i:])
	if i < len(s) && s[i] == ':' {
		return i + 1, true
	}
	return 0, false
}

// subjBlob is the length of a subj-blob at the start of s ("[", no
// brackets, "]", then white space), 0 for none.
func subjBlob(s string) int {
	if s == "" || s[0] != '[' {
		return 0
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return 0
	}
	i := end + 2
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return i
}

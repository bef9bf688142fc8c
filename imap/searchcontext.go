package imap

import (
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
)

// CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 section 4): SEARCH or SORT
// RETURN (UPDATE) keeps the search and tells the client, in ESEARCH
// responses with ADDTO and REMOVEFROM, of each message that comes to
// match it or stops matching as the mailbox changes, until
// CANCELUPDATE or the mailbox is closed; PARTIAL (with RFC 9394's
// ranges counted from the end) returns a window of a SEARCH's or
// SORT's result.

// maxSearchContexts bounds the searches one session keeps up to date;
// each is run again after every change to the mailbox.
const maxSearchContexts = 16

// searchContext is a SEARCH kept up to date.
type searchContext struct {
	tag      string
	uid      bool
	criteria *imapwire.SearchCriteria // converted to UTF-8
	// sortBy is a SORT's keys, nil for a SEARCH.
	sortBy []imapwire.SortKey
	// result is the UIDs matching: ascending for a SEARCH, in sort
	// order for a SORT.
	result []uint32
}

// partialWindow returns the positions of p in nums, a result in its
// order.
func partialWindow(nums []uint32, p *imapwire.PartialRange) []uint32 {
	n := uint32(len(nums))
	if p.First > n {
		return nil
	}
	if p.FromEnd {
		// -1 is the last result, -n the first.
		lo := uint32(1)
		if p.Last < n {
			lo = n - p.Last + 1
		}
		return nums[lo-1 : n-p.First+1]
	}
	return nums[p.First-1 : min(p.Last, n)]
}

// writeNumRuns writes nums in their order, ascending runs as ranges
// ("4,1:3,7"), or NIL for none.
func writeNumRuns(w *imapwire.Writer, nums []uint32) {
	if len(nums) == 0 {
		w.Atom("NIL")
		return
	}
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

// errPartialAll refuses PARTIAL with ALL (RFC 9394 section 3.1).
var errPartialAll = &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "PARTIAL and ALL cannot be used together"}

// checkContextReturn refuses the combinations of return options the RFCs
// do not allow.
func checkContextReturn(o *imap.SearchOptions, ctx *imapwire.ContextReturn) error {
	if ctx.Partial != nil && o.ReturnAll {
		return errPartialAll
	}
	return nil
}

// writePartial writes PARTIAL's return data for nums, the result in its
// order.
func writePartial(w *imapwire.Writer, p *imapwire.PartialRange, nums []uint32) {
	w.Atom(" PARTIAL (" + p.String() + " ")
	writeNumRuns(w, partialWindow(nums, p))
	w.Atom(")")
}

// addSearchContext keeps the search of cmd up to date (UPDATE), or
// says NOUPDATE when the session keeps too many already.
func (s *session) addSearchContext(w *imapwire.Writer, cmd *imapwire.Command, criteria *imapwire.SearchCriteria, all imap.NumSet) {
	nums, _ := numList(all)
	s.addContext(w, &searchContext{tag: cmd.Tag, uid: cmd.UID, criteria: criteria}, nums, cmd.UID)
}

// addSortContext keeps the SORT of cmd up to date; found is its
// result in order.
func (s *session) addSortContext(w *imapwire.Writer, cmd *imapwire.Command, criteria *imapwire.SearchCriteria, sortBy []imapwire.SortKey, found []*matchContext) {
	uids := make([]uint32, len(found))
	for i, mc := range found {
		uids[i] = mc.m.UID
	}
	s.addContext(w, &searchContext{tag: cmd.Tag, uid: cmd.UID, criteria: criteria, sortBy: sortBy}, uids, true)
}

// addContext keeps sc, whose result is nums (UIDs when byUID, else
// sequence numbers), or says NOUPDATE when the session keeps too many
// already.
func (s *session) addContext(w *imapwire.Writer, sc *searchContext, nums []uint32, byUID bool) {
	sel := s.sel
	if len(sel.contexts) >= maxSearchContexts {
		noUpdate(w, sc.tag, "Too many searches kept up to date")
		return
	}
	if byUID {
		sc.result = nums
	} else {
		for _, seq := range nums {
			if int(seq) <= len(sel.view) {
				sc.result = append(sc.result, sel.view[seq-1])
			}
		}
	}
	sel.contexts = append(sel.contexts, sc)
}

// noUpdate says the search tagged tag is not kept up to date (RFC 5267
// section 4.3.1).
func noUpdate(w *imapwire.Writer, tag, text string) {
	w.Untagged()
	w.Atom("NO [NOUPDATE ")
	w.String(tag)
	w.Atom("] " + text)
	w.End()
}

// updateContexts runs the kept searches again over the client's view
// and writes what changed: REMOVEFROM for messages no longer matching
// (expunged ones among them, by their sequence numbers before the
// EXPUNGE that follows), ADDTO for new matches. A SEARCH's results are
// in mailbox order, so the position given is 0 (RFC 5267 section
// 4.3.2).
func (s *session) updateContexts(w *imapwire.Writer) error {
	sel := s.sel
	if sel == nil || len(sel.contexts) == 0 {
		return nil
	}
	for _, sc := range sel.contexts {
		if sc.sortBy != nil {
			if err := s.updateSortContext(w, sc); err != nil {
				return err
			}
			continue
		}
		found, err := s.matching(sc.criteria, false)
		if err != nil {
			return err
		}
		now := make([]uint32, len(found))
		for i, mc := range found {
			now[i] = mc.m.UID
		}
		slices.Sort(now)
		var added, removed []uint32
		for _, u := range now {
			if _, ok := slices.BinarySearch(sc.result, u); !ok {
				added = append(added, u)
			}
		}
		for _, u := range sc.result {
			if _, ok := slices.BinarySearch(now, u); !ok {
				removed = append(removed, u)
			}
		}
		sc.result = now
		for _, change := range []struct {
			name string
			uids []uint32
		}{{"REMOVEFROM", removed}, {"ADDTO", added}} {
			if len(change.uids) == 0 {
				continue
			}
			nums := change.uids
			if !sc.uid {
				nums = nil
				for _, u := range change.uids {
					if i, ok := slices.BinarySearch(sel.view, u); ok {
						nums = append(nums, uint32(i+1))
					}
				}
				if len(nums) == 0 {
					continue
				}
			}
			writeESearchStart(w, &imapwire.Command{Tag: sc.tag, UID: sc.uid})
			w.Atom(" " + change.name + " (0 ")
			writeNumRuns(w, nums)
			w.Atom(")")
			w.End()
		}
	}
	return nil
}

// cmdCancelUpdate serves CANCELUPDATE: the searches tagged so are no
// longer kept up to date. A tag of none is no error: its search may
// have ended with its mailbox.
func (c *conn) cmdCancelUpdate(cmd *imapwire.Command) (okStatus, error) {
	sel := c.sess.sel
	for _, tag := range cmd.Args.(*imapwire.CancelUpdate).Tags {
		sel.contexts = slices.DeleteFunc(sel.contexts, func(sc *searchContext) bool { return sc.tag == tag })
	}
	return okStatus{}, nil
}

// changesMailbox are the commands after which the kept searches are
// run again even when no other session changed anything.
var changesMailbox = map[string]bool{"STORE": true, "EXPUNGE": true, "MOVE": true, "COPY": true, "APPEND": true, "REPLACE": true}

// pollContexts is pollFetchNew with the kept searches brought up to
// date: once over the client's view before the news (what no longer
// matches, expunged messages by the numbers the client still knows),
// once after it when new messages came into the view.
func (s *session) pollContexts(w *imapwire.Writer, allowExpunge bool) error {
	sel := s.sel
	mb := sel.mb
	mb.mu.Lock()
	news := len(sel.flags) > 0 || !sameSlice(sel.view, mb.uids)
	mb.mu.Unlock()
	if news || sel.ctxDirty {
		sel.ctxDirty = false
		if err := s.updateContexts(w); err != nil {
			return err
		}
	}
	before := sel.view
	if err := s.pollFetchNew(w, allowExpunge); err != nil {
		return err
	}
	if !sameSlice(before, sel.view) {
		return s.updateContexts(w)
	}
	return nil
}

// sameSlice reports whether a and b are the same slice (views are
// replaced, never changed in place).
func sameSlice(a, b []uint32) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// updateSortContext runs a kept SORT again and writes what changed:
// REMOVEFROM (0 ...) for the messages gone from its result, ADDTO with
// each new message's position in the result (RFC 5267 section 4.3.3:
// applied in turn, each position counts the messages added before it).
// A message's sort keys do not change, so no message moves.
func (s *session) updateSortContext(w *imapwire.Writer, sc *searchContext) error {
	sel := s.sel
	found, err := s.matching(sc.criteria, true)
	if err != nil {
		return err
	}
	found = s.sorted(found, sc.sortBy)
	now := make([]uint32, len(found))
	in := make(map[uint32]bool, len(found))
	for i, mc := range found {
		now[i] = mc.m.UID
		in[mc.m.UID] = true
	}
	was := make(map[uint32]bool, len(sc.result))
	var removed []uint32
	for _, u := range sc.result {
		was[u] = true
		if !in[u] {
			removed = append(removed, u)
		}
	}
	sc.result = now
	num := func(u uint32) (uint32, bool) {
		if sc.uid {
			return u, true
		}
		i, ok := slices.BinarySearch(sel.view, u)
		return uint32(i + 1), ok
	}
	if len(removed) > 0 {
		var nums []uint32
		for _, u := range removed {
			if n, ok := num(u); ok {
				nums = append(nums, n)
			}
		}
		slices.Sort(nums)
		if len(nums) > 0 {
			writeESearchStart(w, &imapwire.Command{Tag: sc.tag, UID: sc.uid})
			w.Atom(" REMOVEFROM (0 ")
			writeNumRuns(w, nums)
			w.Atom(")")
			w.End()
		}
	}
	first := true
	for i, u := range now {
		if was[u] {
			continue
		}
		n, ok := num(u)
		if !ok {
			continue
		}
		if first {
			writeESearchStart(w, &imapwire.Command{Tag: sc.tag, UID: sc.uid})
			w.Atom(" ADDTO (")
			first = false
		} else {
			w.SP()
		}
		w.Number(uint32(i + 1))
		w.SP()
		w.Number(n)
	}
	if !first {
		w.Atom(")")
		w.End()
	}
	return nil
}

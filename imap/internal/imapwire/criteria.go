package imapwire

import (
	"time"

	"github.com/emersion/go-imap/v2"
)

// SearchCriteria is what SEARCH, SORT and THREAD ask of a message: it
// matches when every key set in it matches (the keys of a command, and
// of a parenthesised list, are ANDed). Unlike go-imap's type it has a
// field for every key the server knows, WITHIN's and SAVEDATE's
// included, so that no key borrows another's field.
type SearchCriteria struct {
	SeqNum []imap.SeqSet // sequence sets, "*" unresolved
	UID    []imap.UIDSet // UID sets; imap.SearchRes() is "$" (RFC 5182)

	// Since and Before bound INTERNALDATE by day (SINCE, BEFORE, ON):
	// dates at midnight in UTC, Before exclusive; zero is no bound.
	Since, Before time.Time
	// SentSince and SentBefore bound the Date header field the same
	// way (SENTSINCE, SENTBEFORE, SENTON).
	SentSince, SentBefore time.Time
	// YoungerFrom and OlderUntil bound INTERNALDATE to the second
	// (RFC 5032's YOUNGER and OLDER): a message matches from
	// YoungerFrom on and before OlderUntil.
	YoungerFrom, OlderUntil time.Time
	// SavedSince and SavedBefore bound the save date by day (RFC 8514's
	// SAVEDSINCE, SAVEDBEFORE, SAVEDON).
	SavedSince, SavedBefore time.Time
	// SaveDateKnown is SAVEDATESUPPORTED: the save date is known. A
	// save-date bound implies it.
	SaveDateKnown bool

	Header []imap.SearchCriteriaHeaderField // header field contains value
	Body   []string                         // BODY
	Text   []string                         // TEXT

	Flag    []imap.Flag // flags set
	NotFlag []imap.Flag // flags not set

	// Larger and Smaller bound RFC822.SIZE, exclusive; zero is no bound.
	Larger, Smaller int64

	// ModSeq is CONDSTORE's MODSEQ key (RFC 7162 section 3.1.5).
	ModSeq *imap.SearchCriteriaModSeq

	Not []SearchCriteria    // NOT, each
	Or  [][2]SearchCriteria // OR, each pair
}

// And narrows c to the messages that match both c and other.
func (c *SearchCriteria) And(other *SearchCriteria) {
	c.SeqNum = append(c.SeqNum, other.SeqNum...)
	c.UID = append(c.UID, other.UID...)
	c.Since = later(c.Since, other.Since)
	c.Before = earlier(c.Before, other.Before)
	c.SentSince = later(c.SentSince, other.SentSince)
	c.SentBefore = earlier(c.SentBefore, other.SentBefore)
	c.YoungerFrom = later(c.YoungerFrom, other.YoungerFrom)
	c.OlderUntil = earlier(c.OlderUntil, other.OlderUntil)
	c.SavedSince = later(c.SavedSince, other.SavedSince)
	c.SavedBefore = earlier(c.SavedBefore, other.SavedBefore)
	c.SaveDateKnown = c.SaveDateKnown || other.SaveDateKnown
	c.Header = append(c.Header, other.Header...)
	c.Body = append(c.Body, other.Body...)
	c.Text = append(c.Text, other.Text...)
	c.Flag = append(c.Flag, other.Flag...)
	c.NotFlag = append(c.NotFlag, other.NotFlag...)
	c.Larger = max(c.Larger, other.Larger)
	if other.Smaller != 0 && (c.Smaller == 0 || other.Smaller < c.Smaller) {
		c.Smaller = other.Smaller
	}
	if other.ModSeq != nil && (c.ModSeq == nil || other.ModSeq.ModSeq > c.ModSeq.ModSeq) {
		c.ModSeq = other.ModSeq
	}
	c.Not = append(c.Not, other.Not...)
	c.Or = append(c.Or, other.Or...)
}

// Walk calls f with c and every criteria nested in c's NOT and OR keys,
// depth first, and stops at the first f that returns true, reporting
// whether one did.
func (c *SearchCriteria) Walk(f func(*SearchCriteria) bool) bool {
	if f(c) {
		return true
	}
	for i := range c.Not {
		if c.Not[i].Walk(f) {
			return true
		}
	}
	for i := range c.Or {
		if c.Or[i][0].Walk(f) || c.Or[i][1].Walk(f) {
			return true
		}
	}
	return false
}

// later is the later of two lower bounds, zero meaning none.
func later(a, b time.Time) time.Time {
	if a.IsZero() || b.After(a) {
		return b
	}
	return a
}

// earlier is the earlier of two upper bounds, zero meaning none.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

package imap

import (
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
)

// resync answers SELECT's QRESYNC parameter (RFC 7162 section 3.2.5)
// after the usual responses: the known messages expunged since the
// client's modseq as VANISHED (EARLIER), then the changed ones as FETCH
// with their flags and modseqs. The sequence match data is a hint the
// server may use and does not need: the index knows what changed.
func (s *session) resync(w *imapwire.Writer, q *imapwire.QResync, uidNext uint32) error {
	if err := s.vanishedEarlier(w, q.ModSeq, q.KnownUIDs, uidNext); err != nil {
		return err
	}
	set := q.KnownUIDs
	if set == nil {
		set = imap.UIDSet{{Start: 1, Stop: 0}}
	}
	return s.fetch(w, set, &fetchItems{
		opts:         imap.FetchOptions{UID: true, Flags: true, ModSeq: true},
		changedSince: q.ModSeq, hasChangedSince: true,
	})
}

// vanishedEarlier writes VANISHED (EARLIER) for the UIDs of known (all
// UIDs below uidNext when nil; uidNext 0 takes the mailbox's) expunged
// since modseq. When the index no longer holds expunges that old, every
// UID of known that is not in the mailbox is reported, as the RFC asks.
func (s *session) vanishedEarlier(w *imapwire.Writer, modseq uint64, known imap.UIDSet, uidNext uint32) error {
	sel := s.sel
	if imap.IsSearchRes(known) {
		known = sel.searchRes
	}
	uids, complete, err := sel.folder.ExpungedSince(s.ctx, modseq)
	if err != nil {
		return mapError(err)
	}
	var out imap.UIDSet
	if complete {
		for _, u := range uids {
			if known == nil || known.Contains(imap.UID(u)) {
				out.AddNum(imap.UID(u))
			}
		}
	} else {
		if uidNext == 0 {
			st, err := sel.folder.Status(s.ctx)
			if err != nil {
				return mapError(err)
			}
			uidNext = st.UIDNext
		}
		out = absentUIDs(sel.view, known, uidNext)
	}
	if len(out) == 0 {
		return nil
	}
	w.Untagged()
	w.Atom("VANISHED (EARLIER) ")
	w.NumSet(out)
	w.End()
	return nil
}

// absentUIDs is the UIDs of known (1 to uidNext-1 when nil) that are not
// in present (ascending), as ranges.
func absentUIDs(present []uint32, known imap.UIDSet, uidNext uint32) imap.UIDSet {
	if uidNext <= 1 {
		return nil
	}
	last := uidNext - 1
	var ranges [][2]uint32
	if known == nil {
		ranges = [][2]uint32{{1, last}}
	} else {
		for _, r := range known {
			ranges = append(ranges, [2]uint32{orMax(uint32(r.Start), last), orMax(uint32(r.Stop), last)})
		}
		ranges = mergeRanges(ranges)
	}
	var out imap.UIDSet
	for _, r := range ranges {
		lo := min(r[0], last+1)
		hi := min(r[1], last)
		i, _ := slices.BinarySearch(present, lo)
		for u := lo; u <= hi; {
			// Skip the present UIDs from u on; the gap runs to the next.
			for i < len(present) && present[i] == u {
				i++
				u++
			}
			if u > hi {
				break
			}
			end := hi
			if i < len(present) && present[i]-1 < end {
				end = present[i] - 1
			}
			out = append(out, imap.UIDRange{Start: imap.UID(u), Stop: imap.UID(end)})
			u = end + 1
		}
	}
	return out
}

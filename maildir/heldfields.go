package maildir

import (
	"context"
	"io"
	"slices"
)

// defaultHeldFieldsMemory is Options.HeldFieldsMemory's default.
const defaultHeldFieldsMemory = 256 << 20

// heldValue is a message's decoded header-fields data kept in memory
// (see DecodedFields), and what it counts against the Store's bound.
type heldValue struct {
	v       any
	size    int64
	version byte
}

// heldOverhead is what holding one value costs beyond the size its
// decoder reports: the heldValue and its pointer in the entry.
const heldOverhead = 48

// DecodedFields is CachedFields for callers that decode the data: it
// returns decode's value of each message's data (nil where
// CachedFields' data is nil or decode fails), and keeps the values in
// memory with the folder's shared state, so that every session of the
// folder gets them without reading mailagent.cache or decoding again
// (IMAP's SORT and THREAD). A value is kept with the message as the
// index knows it: an expunge drops it, and a message that another
// process changes (a new file, a new UIDVALIDITY) gets its value
// derived again, since every call syncs the folder first as Snapshot
// does. The values go when the last handle on the Maildir is closed;
// the Store keeps at most Options.HeldFieldsMemory of them (decode
// reports each value's size in bytes), and beyond that returns the
// values without keeping them. Values are shared: the caller must
// not modify them.
func (f *Folder) DecodedFields(ctx context.Context, uids []uint32, version byte, compute func(r io.Reader) ([]byte, error), decode func(data []byte) (v any, size int, err error)) ([]any, error) {
	if err := f.m.check(); err != nil {
		return nil, err
	}
	if err := f.do(ctx, false, nil); err != nil { // loaded and current
		return nil, err
	}
	st := f.st
	out := make([]any, len(uids))
	var missIdx []int
	var missUIDs []uint32
	var missEnts []*entry
	st.mu.Lock()
	// Many UIDs in ascending order (a whole folder) are found by walking
	// the list beside them, not each in the map.
	walk := len(uids) >= len(st.list)/8 && slices.IsSorted(uids)
	j := 0
	for i, u := range uids {
		var e *entry
		if walk {
			for j < len(st.list) && st.list[j].uid < u {
				j++
			}
			if j < len(st.list) && st.list[j].uid == u {
				e = st.list[j]
			}
		} else {
			e = st.ents[u]
		}
		if e == nil {
			continue
		}
		if h := e.held; h != nil && h.version == version {
			out[i] = h.v
			continue
		}
		missIdx = append(missIdx, i)
		missUIDs = append(missUIDs, u)
		missEnts = append(missEnts, e)
	}
	st.mu.Unlock()
	if len(missUIDs) == 0 {
		return out, nil
	}
	data, err := f.CachedFields(ctx, missUIDs, version, compute)
	if err != nil {
		return nil, err
	}
	type decoded struct {
		j    int
		size int64
	}
	var keep []decoded
	for j, d := range data {
		if d == nil {
			continue
		}
		v, size, err := decode(d)
		if err != nil || v == nil {
			continue
		}
		out[missIdx[j]] = v
		keep = append(keep, decoded{j: j, size: int64(size) + heldOverhead})
	}
	limit := f.m.store.heldLimit()
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, k := range keep {
		e := missEnts[k.j]
		if st.ents[missUIDs[k.j]] != e {
			continue // expunged or replaced meanwhile
		}
		if !f.m.store.holdBytes(k.size, limit) {
			break
		}
		if old := e.held; old != nil {
			st.releaseHeld(old.size)
		}
		e.held = &heldValue{v: out[missIdx[k.j]], size: k.size, version: version}
		st.heldBytes += k.size
	}
	return out, nil
}

// heldLimit is the bound on the Store's held values.
func (s *Store) heldLimit() int64 {
	switch l := s.opts.HeldFieldsMemory; {
	case l == 0:
		return defaultHeldFieldsMemory
	case l < 0:
		return 0
	default:
		return l
	}
}

// holdBytes counts n more bytes of held values if they stay within
// limit.
func (s *Store) holdBytes(n, limit int64) bool {
	for {
		cur := s.held.Load()
		if cur+n > limit {
			return false
		}
		if s.held.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// releaseHeld gives back n bytes of the folder's held values.
func (f *folderState) releaseHeld(n int64) {
	f.heldBytes -= n
	f.s.held.Add(-n)
}

// dropHeld forgets every held value of the folder (its entries are
// being replaced or the state dropped).
func (f *folderState) dropHeld() {
	if f.heldBytes == 0 {
		return
	}
	for _, e := range f.list {
		e.held = nil
	}
	f.releaseHeld(f.heldBytes)
}

package queue

import (
	"container/heap"
	"time"
)

// schedule is the in-memory index of waiting messages: id and due time
// only, about a hundred bytes per message, ordered by due time. Held and
// active messages are not in it.
type schedule struct {
	h    entryHeap
	byID map[string]*entry
}

type entry struct {
	id  string
	due time.Time
	idx int
}

func newSchedule() *schedule {
	return &schedule{byID: make(map[string]*entry)}
}

// set adds id or moves it to due.
func (s *schedule) set(id string, due time.Time) {
	if e, ok := s.byID[id]; ok {
		e.due = due
		heap.Fix(&s.h, e.idx)
		return
	}
	e := &entry{id: id, due: due}
	s.byID[id] = e
	heap.Push(&s.h, e)
}

// remove drops id; it reports whether id was there.
func (s *schedule) remove(id string) bool {
	e, ok := s.byID[id]
	if !ok {
		return false
	}
	heap.Remove(&s.h, e.idx)
	delete(s.byID, id)
	return true
}

// next returns the earliest due time, and false when nothing waits.
func (s *schedule) next() (time.Time, bool) {
	if len(s.h) == 0 {
		return time.Time{}, false
	}
	return s.h[0].due, true
}

// popDue removes and returns the earliest id if it is due at now.
func (s *schedule) popDue(now time.Time) (string, bool) {
	if len(s.h) == 0 || s.h[0].due.After(now) {
		return "", false
	}
	e := heap.Pop(&s.h).(*entry)
	delete(s.byID, e.id)
	return e.id, true
}

func (s *schedule) has(id string) bool {
	_, ok := s.byID[id]
	return ok
}

func (s *schedule) len() int { return len(s.h) }

type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

package imapwire

import "math"

// ContextReturn is the return options of CONTEXT=SEARCH and
// CONTEXT=SORT (RFC 5267 section 4): UPDATE, CONTEXT (a hint) and
// PARTIAL, with RFC 9394's ranges counted from the end.
type ContextReturn struct {
	Update  bool
	Context bool
	Partial *PartialRange
}

// PartialRange is PARTIAL's range of positions in a result, 1-based,
// First <= Last; with FromEnd, counted from the last result (-1 is
// the last), as RFC 9394 writes "-1:-100".
type PartialRange struct {
	First, Last uint32
	FromEnd     bool
}

// String is the range as a response echoes it.
func (p *PartialRange) String() string {
	if p.FromEnd {
		return "-" + utoa(p.First) + ":-" + utoa(p.Last)
	}
	return utoa(p.First) + ":" + utoa(p.Last)
}

func utoa(n uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			return string(b[i:])
		}
	}
}

// contextReturn reads the return option name (UPDATE, CONTEXT or
// PARTIAL with its range).
func (r *Reader) contextReturn(ctx *ContextReturn, name string) {
	switch name {
	case "UPDATE":
		ctx.Update = true
	case "CONTEXT":
		ctx.Context = true
	case "PARTIAL":
		r.sp()
		first, neg1 := r.partialBound()
		r.expect(':', "a partial range")
		last, neg2 := r.partialBound()
		if neg1 != neg2 {
			r.syntax("A partial range is counted from one end")
		}
		if first > last {
			first, last = last, first
		}
		ctx.Partial = &PartialRange{First: first, Last: last, FromEnd: neg1}
	}
}

// partialBound reads one end of a partial range: a nonzero number,
// negative for RFC 9394's count from the end.
func (r *Reader) partialBound() (uint32, bool) {
	neg := r.maybe('-')
	n := r.number64()
	if n == 0 || n > math.MaxUint32 {
		r.syntax("Invalid partial range")
	}
	return uint32(n), neg
}

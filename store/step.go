package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// stepDirectory is implemented by directories that can answer every
// lookup Resolve makes for one address in a single round trip: is the
// domain local, and the forwardings and users stored under the address,
// its subaddress-free form and the domain's catch-all.
type stepDirectory interface {
	lookupStep(ctx context.Context, addrs []Address) (*stepResult, error)
}

// stepResult is the answer of lookupStep: whether the domain is local,
// and what the address resolves to in Resolve's lookup order (nil: no
// forwarding, user or catch-all). It may be shared through the cache and
// is never modified after it is built.
type stepResult struct {
	local bool
	m     *match
}

// stepQuery returns the statement that answers one Resolve step with nd
// domain keys, nk keys of the address and nb keys of its
// subaddress-free form (0 when it has none). Its one row has a column
// for each part, empty when missing:
//
//	domain | forwarding | user | [forwarding | user of the subaddress-free form] | catch-all
//
// A forwarding is its source and destination joined by a newline (no
// address contains one), a user the fields of stepUser. Each part is
// found with one index search; the catch-all is searched only when
// nothing before it matched (SQLite runs a subquery in a CASE branch
// only when the branch is taken). The columns are few on purpose: for
// each column of each query, the driver fetches its name and declared
// type, and then its type and value, each a call into SQLite behind its
// mutex; joining the fields costs less.
func (s *SQL) stepQuery(nd, nk, nb uint8) string {
	// CONCAT_WS, in both dialects, skips NULLs and gives '' when all are
	// NULL; the columns joined are NOT NULL, so a row found keeps all its
	// fields.
	join := func(cols ...string) string {
		return "CONCAT_WS('\n', " + strings.Join(cols, ", ") + ")"
	}
	part := func(f, u string) string {
		return join(f+".source", f+".destination") + ", " +
			join(u+".email", u+".display_email", u+".quota_bytes", u+".quota_messages", u+".disabled", u+".maildir")
	}
	var b strings.Builder
	b.WriteString("SELECT COALESCE((SELECT domain FROM domains WHERE " + s.in("domain", nd) + " LIMIT 1), ''), ")
	b.WriteString(part("f", "u"))
	none := "f.source IS NULL AND u.email IS NULL"
	if nb > 0 {
		b.WriteString(", " + part("g", "v"))
		none += " AND g.source IS NULL AND v.email IS NULL"
	}
	b.WriteString(", COALESCE(CASE WHEN " + none + " THEN (SELECT " + join("source", "destination") +
		" FROM forwardings WHERE " + s.in("source", nd) + " LIMIT 1) END, '')")
	b.WriteString(" FROM (SELECT 1) AS one LEFT JOIN forwardings f ON " + s.in("f.source", nk) + " LEFT JOIN users u ON " + s.in("u.email", nk))
	if nb > 0 {
		b.WriteString(" LEFT JOIN forwardings g ON " + s.in("g.source", nb) + " LEFT JOIN users v ON " + s.in("v.email", nb))
	}
	// Several rows come only from a key found under several of its
	// spellings, which are all the same address: the one stored under
	// the canonical spelling is preferred (see first).
	var order []string
	eq := func(col string) string { return s.ci(col) + " = " + s.ciArg() + " DESC" }
	if nk > 1 {
		order = append(order, eq("f.source"), eq("u.email"))
	}
	if nb > 1 {
		order = append(order, eq("g.source"), eq("v.email"))
	}
	if order != nil {
		b.WriteString(" ORDER BY " + strings.Join(order, ", "))
	}
	b.WriteString(" LIMIT 1")
	return b.String()
}

// stepUser parses the user column of stepQuery: email, display_email,
// quota_bytes, quota_messages, disabled and maildir, joined by
// newlines. The maildir comes last, so a newline in it is kept.
func stepUser(col string) (userRow, bool) {
	var r userRow
	var f [5]string
	rest := col
	for i := range f {
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, "\n"); !ok {
			return r, false
		}
	}
	var err [3]error
	r.email, r.display, r.maildir = f[0], f[1], rest
	r.qb, err[0] = strconv.ParseInt(f[2], 10, 64)
	r.qm, err[1] = strconv.ParseInt(f[3], 10, 64)
	r.disabled, err[2] = strconv.ParseInt(f[4], 10, 64)
	return r, err[0] == nil && err[1] == nil && err[2] == nil
}

// lookupStep implements stepDirectory. addrs share one domain and are
// one or two (the address and its subaddress-free form).
func (s *SQL) lookupStep(ctx context.Context, addrs []Address) (*stepResult, error) {
	if len(addrs) == 0 || len(addrs) > 2 {
		return nil, fmt.Errorf("store: lookup of %d addresses", len(addrs))
	}
	if s.cache == nil {
		return bounded(s, ctx, func(ctx context.Context) (*stepResult, error) { return s.queryStep(ctx, addrs) })
	}
	key := "s:" + addrs[0].Key()
	if len(addrs) > 1 {
		key += " " + addrs[1].Key()
	}
	v, err := s.cached(ctx, key, func(ctx context.Context) (any, error) { return s.queryStep(ctx, addrs) })
	if err != nil {
		return nil, err
	}
	return v.(*stepResult), nil
}

// stepState is what one queryStep allocates, at once.
type stepState struct {
	res  stepResult
	m    match
	cols [6]string
	dst  [6]any
	args [6]any // enough for an ASCII address and its subaddress-free form
}

// queryStep runs stepQuery for addrs and applies Resolve's lookup order
// to its row, checking each key found again as the other lookups do.
func (s *SQL) queryStep(ctx context.Context, addrs []Address) (*stepResult, error) {
	domain := addrs[0].Domain
	dk := domainKeys(domain)
	var keys [2]keyList
	for i, a := range addrs {
		keys[i] = addressKeys(a)
	}
	st, err := s.stmt(ctx, stmtKey{kind: stmtStep, n: [3]uint8{uint8(dk.n), uint8(keys[0].n), uint8(keys[1].n)}})
	if err != nil {
		return nil, err
	}
	state := new(stepState)
	args := keyArgs(state.args[:0], dk.list())
	catchAll := "@" + domain
	args = append(args, catchAll)
	if dk.n > 1 {
		args = append(args, "@"+dk.k[1])
	}
	var canon [2]int // index in args of each canonical key
	for i, k := range keys {
		// Each key is passed twice (forwardings, users): box it once.
		n := len(args)
		canon[i] = n
		args = keyArgs(args, k.list())
		args = append(args, args[n:]...)
	}
	for i, k := range keys {
		if k.n > 1 {
			args = append(args, args[canon[i]], args[canon[i]])
		}
	}
	n := 2*len(addrs) + 2
	cols := state.cols[:n]
	dst := state.dst[:n]
	for i := range dst {
		dst[i] = &cols[i]
	}
	err = st.QueryRowContext(ctx, args...).Scan(dst...)
	if err != nil {
		return nil, fmt.Errorf("store: resolve %s: %w", addrs[0], err)
	}
	res := &state.res
	res.local = cols[0] != "" && (cols[0] == domain || sameDomain(cols[0], domain))
	if !res.local {
		return res, nil
	}
	// The statement reads the catch-all only when nothing was found
	// under the address (nor its subaddress-free form).
	catchAllRead := true
	for i, a := range addrs {
		fwd, user := cols[1+2*i], cols[2+2*i]
		if fwd == "" && user == "" {
			continue
		}
		catchAllRead = false
		// The first key is the canonical spelling; for an unquoted
		// local part it is also the Key. A row stored under it is the
		// address without parsing it again.
		canon := keys[i].k[0]
		var key string
		if canon[0] != '"' {
			key = canon
		} else {
			key = a.Key()
		}
		if src, dst, _ := strings.Cut(fwd, "\n"); src != "" {
			if k, err := sourceKey(src); src == canon || (err == nil && k == key) {
				state.m = match{source: a.String(), dests: splitDestinations(dst), key: key}
				res.m = &state.m
				return res, nil
			}
		}
		if ur, ok := stepUser(user); ok {
			var u *User
			if ur.email == canon && ur.display == "" && key == canon {
				u = ur.userAt(Address{Local: canon[:len(canon)-len(domain)-1], Domain: domain}, canon)
			} else {
				u = ur.user(key)
			}
			if u != nil {
				state.m = match{user: u, key: key}
				res.m = &state.m
				return res, nil
			}
		}
	}
	if src, dst, ok := strings.Cut(cols[n-1], "\n"); ok {
		if k, err := sourceKey(src); err == nil && k == catchAll {
			state.m = match{source: k, dests: splitDestinations(dst)}
			res.m = &state.m
			return res, nil
		}
	}
	if !catchAllRead {
		// Rows were found under the address but are other addresses
		// under a MySQL collation, so the statement did not read the
		// catch-all: read it now.
		dests, err := s.Forwardings(ctx, catchAll)
		if err == nil {
			state.m = match{source: catchAll, dests: dests}
			res.m = &state.m
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return res, nil
}

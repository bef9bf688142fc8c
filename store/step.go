package store

import (
	"context"
	"fmt"
	"slices"
)

// stepDirectory is implemented by directories that can answer every
// lookup Resolve makes for one address in a single round trip: is the
// domain local, and the forwardings and users stored under the address,
// its subaddress-free form and the domain's catch-all.
type stepDirectory interface {
	lookupStep(ctx context.Context, addrs []Address) (*stepResult, error)
}

// stepResult is the answer of lookupStep. It may be shared through the
// cache and is never modified after it is built.
type stepResult struct {
	local bool
	fwd   map[string][]string // by Address.Key, or "@domain"
	users map[string]*User    // by Address.Key
}

// stepQuery returns the statement with nd domain, nf forwarding and nu
// user keys.
func stepQuery(nd, nf, nu int) string {
	return "SELECT 0, domain, '', '', 0, 0, 0, 0, 0 FROM domains WHERE domain IN " + placeholders(nd) +
		" UNION ALL SELECT 1, source, destination, '', 0, 0, 0, 0, 0 FROM forwardings WHERE source IN " + placeholders(nf) +
		" UNION ALL SELECT 2, " + userColumns + " FROM users WHERE email IN " + placeholders(nu)
}

// lookupStep implements stepDirectory. addrs share one domain and are
// one or two (the address and its subaddress-free form).
func (s *SQL) lookupStep(ctx context.Context, addrs []Address) (*stepResult, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("store: lookup of no address")
	}
	domain := addrs[0].Domain
	key := "s:"
	for _, a := range addrs {
		key += a.Key() + " "
	}
	v, err := s.cached(key, func() (any, error) {
		dk := distinct(domain, DomainASCII(domain))
		var uk []any
		for _, a := range addrs {
			uk = append(uk, addressKeys(a)...)
		}
		uk = distinct(uk...)
		fk := distinct(append(slices.Clone(uk), "@"+domain, "@"+DomainASCII(domain))...)
		st, err := s.stmt(ctx, stepQuery(len(dk), len(fk), len(uk)))
		if err != nil {
			return nil, err
		}
		args := append(append(dk, fk...), uk...)
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("store: resolve %s: %w", addrs[0], err)
		}
		defer rows.Close()
		res := &stepResult{fwd: map[string][]string{}, users: map[string]*User{}}
		for rows.Next() {
			var (
				kind                  int
				k, v1, v2             string
				qb, qm, dis, cre, upd int64
			)
			if err := rows.Scan(&kind, &k, &v1, &v2, &qb, &qm, &dis, &cre, &upd); err != nil {
				return nil, fmt.Errorf("store: resolve %s: %w", addrs[0], err)
			}
			switch kind {
			case 0:
				res.local = res.local || sameDomain(k, domain)
			case 1:
				if _, sk, err := sourceKeys(k); err == nil {
					res.fwd[sk] = splitDestinations(v1)
				}
			case 2:
				if a, err := ParseAddress(k); err == nil {
					res.users[a.Key()] = newUser(k, v1, v2, qb, qm, dis, cre, upd)
				}
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: resolve %s: %w", addrs[0], err)
		}
		return res, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*stepResult), nil
}

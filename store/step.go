package store

import (
	"context"
	"fmt"
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

// stepQuery returns the statement for n addresses (of one domain): each
// address and the catch-all are looked up in both domain spellings.
func stepQuery(n int) string {
	return "SELECT 0, domain, '', '', 0, 0, 0, 0, 0 FROM domains WHERE domain IN (?, ?)" +
		" UNION ALL SELECT 1, source, destination, '', 0, 0, 0, 0, 0 FROM forwardings WHERE source IN " + placeholders(nKeys*n+2) +
		" UNION ALL SELECT 2, " + userColumns + " FROM users WHERE email IN " + placeholders(nKeys*n)
}

// lookupStep implements stepDirectory. addrs share one domain and are
// one or two (the address and its subaddress-free form).
func (s *SQL) lookupStep(ctx context.Context, addrs []Address) (*stepResult, error) {
	if len(addrs) == 0 || len(addrs) > len(s.qStep) {
		return nil, fmt.Errorf("store: lookup of %d addresses", len(addrs))
	}
	domain := addrs[0].Domain
	key := "s:"
	for _, a := range addrs {
		key += a.Key() + " "
	}
	v, err := s.cached(key, func() (any, error) {
		args := make([]any, 0, 2*nKeys*len(addrs)+4)
		args = append(args, domain, DomainASCII(domain))
		for _, a := range addrs {
			args = append(args, addressKeys(a)...)
		}
		args = append(args, "@"+domain, "@"+DomainASCII(domain))
		for _, a := range addrs {
			args = append(args, addressKeys(a)...)
		}
		rows, err := s.qStep[len(addrs)-1].QueryContext(ctx, args...)
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

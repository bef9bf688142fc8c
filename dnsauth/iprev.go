package dnsauth

import (
	"context"
	"net"
	"strings"
	"sync"
)

// IPRevStatus is the iprev result (RFC 8601 section 3), spelled as in
// Authentication-Results.
type IPRevStatus string

// The iprev results.
const (
	IPRevPass      IPRevStatus = "pass"      // a reverse name resolves back to the client
	IPRevFail      IPRevStatus = "fail"      // no PTR, or none resolves back
	IPRevTempError IPRevStatus = "temperror" // DNS failed for now
	IPRevPermError IPRevStatus = "permerror" // DNS failed for good (not NXDOMAIN)
)

// IPRevResult is the forward-confirmed reverse DNS of a client.
type IPRevResult struct {
	Status IPRevStatus
	IP     net.IP
	// Names are the reverse names that resolve back to IP.
	Names []string
	// HasPTR is false when the address has no PTR record at all, the case
	// an optional policy refuses.
	HasPTR bool
	// HELOMatch is true when the HELO name is one of Names, or the address
	// literal of IP.
	HELOMatch bool
	Err       error
}

// iprevMaxNames bounds the forward lookups, as RFC 7208 section 4.6.4
// does for the same check.
const iprevMaxNames = 10

// CheckIPRev checks that the client ip has a reverse name that resolves
// back to it (RFC 8601 section 3, the Postfix reject_unknown_client_hostname
// check), and whether helo is that name. Lookups go through r under ctx:
// the PTR lookup first, then the forward lookups of every reverse name (at
// most iprevMaxNames of them) concurrently, so that a slow resolver costs
// two lookups' time whatever the number of names. Each forward lookup is
// one LookupIPAddr, which asks for A and AAAA together on a
// *net.Resolver. CheckIPRev returns once every lookup it started has
// returned; it relies on r to end a lookup when ctx ends.
func CheckIPRev(ctx context.Context, r Resolver, ip net.IP, helo string) IPRevResult {
	return checkIPRev(ctx, r, ip, helo, lookupConcurrently)
}

// forwardAnswer is one forward lookup's answer.
type forwardAnswer struct {
	addrs []net.IPAddr
	err   error
}

// checkIPRev is CheckIPRev with the forward lookups made by lookup,
// which answers names[i] in its result's [i].
func checkIPRev(ctx context.Context, r Resolver, ip net.IP, helo string, lookup func(context.Context, Resolver, []string) []forwardAnswer) IPRevResult {
	res := IPRevResult{IP: ip}
	helo = strings.ToLower(strings.TrimSuffix(helo, "."))
	if lit, ok := strings.CutPrefix(helo, "["); ok {
		lit = strings.TrimPrefix(strings.TrimSuffix(lit, "]"), "ipv6:")
		res.HELOMatch = net.ParseIP(lit).Equal(ip)
	}
	names, err := r.LookupAddr(ctx, ip.String())
	switch {
	case err != nil && isNotFound(err):
		res.Status, res.Err = IPRevFail, err
		return res
	case err != nil && isTemporary(err):
		res.Status, res.Err = IPRevTempError, err
		return res
	case err != nil:
		res.Status, res.Err = IPRevPermError, err
		return res
	}
	res.HasPTR = len(names) > 0
	if len(names) > iprevMaxNames {
		names = names[:iprevMaxNames]
	}
	// The answers are read in the PTR's order once all are in, so that
	// Names and the error kept do not depend on which answered first.
	answers := lookup(ctx, r, names)
	var tempErr error
	for i, n := range names {
		addrs, err := answers[i].addrs, answers[i].err
		if err != nil {
			if isTemporary(err) && tempErr == nil {
				tempErr = err
			}
			continue
		}
		for _, a := range addrs {
			if a.IP.Equal(ip) {
				name := strings.ToLower(strings.TrimSuffix(n, "."))
				res.Names = append(res.Names, name)
				if name == helo {
					res.HELOMatch = true
				}
				break
			}
		}
	}
	switch {
	case len(res.Names) > 0:
		res.Status = IPRevPass
	case tempErr != nil:
		res.Status, res.Err = IPRevTempError, tempErr
	default:
		res.Status = IPRevFail
	}
	return res
}

// lookupConcurrently looks every name up at once and returns once all
// have answered.
func lookupConcurrently(ctx context.Context, r Resolver, names []string) []forwardAnswer {
	answers := make([]forwardAnswer, len(names))
	if len(names) == 1 {
		answers[0].addrs, answers[0].err = r.LookupIPAddr(ctx, names[0])
		return answers
	}
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() {
			answers[i].addrs, answers[i].err = r.LookupIPAddr(ctx, n)
		})
	}
	wg.Wait()
	return answers
}

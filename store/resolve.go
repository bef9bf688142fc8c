package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Errors of recipient resolution, besides ErrNotFound (no such user or
// forwarding) and *AddressError (malformed address).
var (
	// ErrNotLocal means the address's domain is not a local domain.
	// An MX answers it with "554 5.7.1 relay access denied".
	ErrNotLocal = errors.New("store: domain is not local")
	// ErrDisabled means the mailbox exists but is disabled.
	ErrDisabled = errors.New("store: mailbox disabled")
	// ErrLoop means forwardings lead back to an address already being
	// expanded, with no mailbox in between.
	ErrLoop = errors.New("store: forwarding loop")
	// ErrLimit means the expansion is deeper or wider than
	// ResolveOptions allow. It is a configuration problem: an MTA
	// should defer (4.x.x), as Postfix does.
	ErrLimit = errors.New("store: forwarding expansion limit exceeded")
)

// ResolveOptions tune Resolve. The zero value gives the defaults.
type ResolveOptions struct {
	// Delimiters lists the characters that separate a subaddress
	// ("user+tag@domain"), like Postfix's recipient_delimiter; the local
	// part is cut at the first of them. Empty means "+".
	Delimiters string
	// NoSubaddress turns subaddressing off.
	NoSubaddress bool
	// MaxDepth bounds the nesting of forwardings; 0 means 20.
	MaxDepth int
	// MaxFanOut bounds the number of destinations one address expands
	// to, counted over the whole expansion; 0 means 1000 (Postfix's
	// virtual_alias_expansion_limit).
	MaxFanOut int
}

// Mailbox is a local delivery target.
type Mailbox struct {
	// Address is the user's address as User.Address gives it.
	Address string
	// Maildir is User.Maildir: relative to the Maildir base unless
	// absolute.
	Maildir string
	// QuotaBytes and QuotaMessages are the user's limits; 0 is none.
	QuotaBytes, QuotaMessages int64
}

// Failure is one destination of a forwarding that cannot be delivered:
// an unknown or disabled local user, a loop, a malformed address.
type Failure struct {
	Address string
	Err     error
}

// Resolution is where mail for one address goes.
type Resolution struct {
	// Local are the mailboxes to deliver into, each once.
	Local []Mailbox
	// Remote are addresses in other domains to forward to, each once,
	// in canonical form (Address.String).
	Remote []string
	// Failed lists destinations reached through forwardings that cannot
	// take the mail. The mail is still accepted for the others; an MTA
	// may bounce these copies, as Postfix does.
	Failed []Failure
}

// Resolve is the package's Resolve on s with the ResolveOptions given
// to Open. Each address costs one query returning one row (is the
// domain local, and the forwarding and user under the address, under
// its subaddress-free form and, when none of these exist, the
// catch-all), or none when Options.CacheTTL caches it.
func (s *SQL) Resolve(ctx context.Context, address string) (*Resolution, error) {
	return Resolve(ctx, s, address, s.opts.Resolve)
}

// Resolve finds the final destinations of mail for address, the way the
// seed's Postfix virtual_alias_maps (forwardings, then users mapped to
// themselves) and virtual_mailbox_maps do.
//
// For each address, in this order, the first match wins: a forwarding
// or a user for the exact address; the same for the address without its
// subaddress ("user+tag" → "user"); the catch-all forwarding "@domain".
// So a catch-all never takes mail for an existing user or forwarding.
// A subaddress matched through its base address is not carried over to
// the destinations (Postfix's propagate_unmatched_extensions is off).
// Forwardings are expanded recursively. A destination equal to the
// forwarding's source is not expanded again but delivered to that
// user's mailbox (keep a local copy). Addresses already expanded are
// skipped, so each target receives one copy and loops end. Destinations
// in non-local domains are returned as Remote and not expanded.
//
// Errors: *AddressError for a malformed address; ErrNotLocal when its
// domain is not local; ErrNotFound for no user, forwarding or catch-all;
// ErrDisabled for a disabled user; ErrLimit when the expansion exceeds
// the limits (the whole resolution fails); when forwardings lead
// nowhere deliverable, the first Failure's error (ErrLoop, ErrNotFound,
// ErrDisabled...). A Resolution returned with a nil error has at least
// one Local or Remote target.
func Resolve(ctx context.Context, d Directory, address string, opts ResolveOptions) (*Resolution, error) {
	a, err := ParseAddress(address)
	if err != nil {
		return nil, err
	}
	r := &resolver{d: d, opts: opts}
	r.res = &r.result
	r.res.Local = r.firstLocal[:0]
	if r.opts.Delimiters == "" {
		r.opts.Delimiters = "+"
	}
	if r.opts.MaxDepth <= 0 {
		r.opts.MaxDepth = 20
	}
	if r.opts.MaxFanOut <= 0 {
		r.opts.MaxFanOut = 1000
	}
	r.step, _ = d.(stepDirectory)
	if err := r.expand(ctx, a, 0, nil); err != nil {
		return nil, err
	}
	if len(r.res.Local) == 0 && len(r.res.Remote) == 0 {
		if len(r.res.Failed) > 0 {
			return nil, r.res.Failed[0].Err
		}
		return nil, fmt.Errorf("%w: %s", ErrNotFound, a)
	}
	return r.res, nil
}

type resolver struct {
	d    Directory
	opts ResolveOptions
	res  *Resolution
	// result and firstLocal are res and the first element of
	// res.Local, allocated with the resolver.
	result     Resolution
	firstLocal [1]Mailbox
	addrs      [2]Address     // lookup's argument to lookupStep
	local      smallMap[bool] // keys of mailboxes in res.Local
	done       smallMap[bool] // keys of addresses expanded or sent remote
	domains    smallMap[bool] // domain → is local
	fanout     int
	step       stepDirectory // nil: one Directory call per lookup
}

func (r *resolver) isLocal(ctx context.Context, domain string) (bool, error) {
	if v, ok := r.domains.get(domain); ok {
		return v, nil
	}
	v, err := r.d.IsLocalDomain(ctx, domain)
	if err != nil {
		return false, err
	}
	r.domains.put(domain, v)
	return v, nil
}

// match is what an address resolves to at one level.
type match struct {
	source string // the forwarding source or user address that matched
	dests  []string
	user   *User
	// key is the Address.Key of the user, or of the forwarding's source
	// ("" for a catch-all), when known.
	key string
}

// lookup applies the lookup order for one address. It returns a nil
// match and no error when the domain is not local.
func (r *resolver) lookup(ctx context.Context, a Address) (*match, error) {
	r.addrs[0] = a
	addrs := r.addrs[:1]
	if base, ok := r.stripSubaddress(a); ok {
		addrs = append(addrs, base)
	}
	if known, ok := r.domains.get(a.Domain); ok && !known {
		return nil, nil
	}
	if r.step != nil {
		res, err := r.step.lookupStep(ctx, addrs)
		if err != nil {
			return nil, err
		}
		r.domains.put(a.Domain, res.local)
		if !res.local {
			return nil, nil
		}
		if res.m == nil {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, a)
		}
		return res.m, nil
	}
	if local, err := r.isLocal(ctx, a.Domain); err != nil || !local {
		return nil, err
	}
	for _, x := range addrs {
		k := x.String()
		dests, err := r.d.Forwardings(ctx, k)
		if err == nil {
			return &match{source: k, dests: dests}, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		u, err := r.d.LookupUser(ctx, k)
		if err == nil {
			return &match{source: k, user: u}, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	dests, err := r.d.Forwardings(ctx, "@"+a.Domain)
	if err == nil {
		return &match{source: "@" + a.Domain, dests: dests}, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, a)
}

func (r *resolver) stripSubaddress(a Address) (Address, bool) {
	if r.opts.NoSubaddress {
		return a, false
	}
	i := strings.IndexAny(a.Local, r.opts.Delimiters)
	if i <= 0 {
		return a, false
	}
	return Address{Local: a.Local[:i], Domain: a.Domain}, true
}

// expand resolves a, a local-domain address. path holds the keys of the
// addresses being expanded above it, to tell a loop from a duplicate.
// Errors returned are fatal to the whole resolution; errors of one
// target are recorded in res.Failed, except at depth 0 where there is
// only one target.
func (r *resolver) expand(ctx context.Context, a Address, depth int, path []string) error {
	m, err := r.lookup(ctx, a)
	if err != nil {
		return r.fail(a, depth, err)
	}
	if m == nil {
		if depth == 0 {
			return fmt.Errorf("%w: %s", ErrNotLocal, a.Domain)
		}
		r.res.Remote = append(r.res.Remote, a.String())
		return nil
	}
	if depth > r.opts.MaxDepth {
		return fmt.Errorf("%w: nesting deeper than %d at %s", ErrLimit, r.opts.MaxDepth, a)
	}
	if m.user != nil {
		return r.deliver(a, depth, m.user, m.key)
	}
	aKey := a.Key()
	if depth == 0 {
		r.done.put(aKey, true)
	}
	path = append(path, aKey)
	srcKey := m.key
	if srcKey == "" && m.source != "" && m.source[0] != '@' {
		if sa, err := ParseAddress(m.source); err == nil {
			srcKey = sa.Key()
		}
	}
	for _, ds := range m.dests {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.fanout++
		if r.fanout > r.opts.MaxFanOut {
			return fmt.Errorf("%w: more than %d destinations for %s", ErrLimit, r.opts.MaxFanOut, a)
		}
		da, err := ParseAddress(ds)
		if err != nil {
			r.res.Failed = append(r.res.Failed, Failure{Address: ds, Err: err})
			continue
		}
		key := da.Key()
		if key == aKey || key == srcKey {
			// The list names its own source: a local copy.
			if err := r.keepCopy(ctx, da, depth); err != nil {
				return err
			}
			continue
		}
		if r.done.has(key) {
			for _, p := range path {
				if p == key {
					r.res.Failed = append(r.res.Failed, Failure{Address: da.String(),
						Err: fmt.Errorf("%w: %s", ErrLoop, da)})
					break
				}
			}
			continue
		}
		r.done.put(key, true)
		if err := r.expand(ctx, da, depth+1, path); err != nil {
			return err
		}
	}
	return nil
}

// keepCopy delivers to the mailbox of a forwarding's own source.
func (r *resolver) keepCopy(ctx context.Context, a Address, depth int) error {
	keys := []string{a.String()}
	if base, ok := r.stripSubaddress(a); ok {
		keys = append(keys, base.String())
	}
	for _, k := range keys {
		u, err := r.d.LookupUser(ctx, k)
		if err == nil {
			return r.deliver(a, depth+1, u, "")
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return r.fail(a, depth+1, fmt.Errorf("%w: %s", ErrNotFound, a))
}

// deliver adds u's mailbox to the result. key is u's Address.Key, or ""
// to compute it.
func (r *resolver) deliver(a Address, depth int, u *User, key string) error {
	if u.Disabled {
		return r.fail(a, depth, fmt.Errorf("%w: %s", ErrDisabled, u.Address))
	}
	if key == "" {
		key = strings.ToLower(u.Address)
		if ua, err := ParseAddress(u.Address); err == nil {
			key = ua.Key()
		}
	}
	if r.local.has(key) {
		return nil
	}
	r.local.put(key, true)
	r.res.Local = append(r.res.Local, Mailbox{
		Address:       u.Address,
		Maildir:       u.Maildir,
		QuotaBytes:    u.QuotaBytes,
		QuotaMessages: u.QuotaMessages,
	})
	return nil
}

// fail records err for a; at depth 0 it is the result of Resolve.
// Lookup errors other than the per-target ones are always fatal.
func (r *resolver) fail(a Address, depth int, err error) error {
	var ae *AddressError
	perTarget := errors.Is(err, ErrNotFound) || errors.Is(err, ErrDisabled) || errors.As(err, &ae)
	if depth == 0 || !perTarget {
		return err
	}
	r.res.Failed = append(r.res.Failed, Failure{Address: a.String(), Err: err})
	return nil
}

// smallMap is a map from strings that keeps its first few entries in an
// array: most resolutions involve one or two addresses and domains, and
// need no hash map.
type smallMap[V any] struct {
	keys [4]string
	vals [4]V
	n    int
	m    map[string]V
}

func (m *smallMap[V]) get(k string) (V, bool) {
	for i := range m.n {
		if m.keys[i] == k {
			return m.vals[i], true
		}
	}
	v, ok := m.m[k]
	return v, ok
}

func (m *smallMap[V]) has(k string) bool {
	_, ok := m.get(k)
	return ok
}

func (m *smallMap[V]) put(k string, v V) {
	for i := range m.n {
		if m.keys[i] == k {
			m.vals[i] = v
			return
		}
	}
	if m.n < len(m.keys) {
		m.keys[m.n], m.vals[m.n] = k, v
		m.n++
		return
	}
	if m.m == nil {
		m.m = make(map[string]V)
	}
	m.m[k] = v
}

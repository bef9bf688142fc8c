package auth

import (
	"container/list"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mailagent/mailagent/internal/netaddr"
)

// ErrThrottled matches (with errors.Is) every *ThrottledError.
var ErrThrottled = errors.New("auth: too many failed logins")

// ThrottledError is returned instead of checking a password when the
// client's network has failed too often recently, or has as many
// attempts in flight as the throttle allows. Servers
// answer it with a temporary error and usually close the connection:
// SMTP "421 4.7.0", IMAP "BYE", POP3 "-ERR [SYS/TEMP]".
type ThrottledError struct {
	// RetryAfter is how long the lockout still lasts, or for a refusal
	// without lockout, when one failure will have been forgiven.
	RetryAfter time.Duration
}

// Error implements error.
func (e *ThrottledError) Error() string {
	return fmt.Sprintf("auth: too many failed logins, retry in %s", e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// ThrottleConfig tunes a Throttle. Zero fields take the defaults named.
//
// A login takes its place in the throttle before its password is
// checked (Begin), so that attempts made in parallel count as they
// start, not as they fail: the allowance holds however many connections
// a guesser opens. A failure is counted against the client's network
// (its IPv4 address, or its IPv6 /64, since one host usually owns a
// whole /64), the wider network around it (IPv4 /24, IPv6 /48) and the
// username tried; one failure is forgiven per Forgive of quiet.
//
// The failure reply is delayed by BaseDelay doubled per failure counted
// for the network or the username, at most MaxDelay, which is Dovecot's
// auth penalty (2 s up to 15 s). A network with NetworkLimit failures
// and attempts in flight gets no further attempt until one is forgiven;
// reaching NetworkLimit failures refuses it for Lockout, which is mox's
// per-IP limit.
//
// Nothing a client does refuses anyone else: a username with UserLimit
// failures from many networks is slowed (its failures get the longest
// delay, and a network that has failed may have only one attempt on the
// throttle in flight), never locked, so that guessing at an account does
// not lock its owner out; and a wide network with WideNetworkLimit
// failures refuses only those of its networks that have failed
// themselves, so that an attacker holding many /64s of one allocation
// cannot simply move to the next, while a neighbour who never failed
// logs in as ever.
type ThrottleConfig struct {
	// BaseDelay is the delay after the first failure (2 s); negative
	// turns the delay off (Dovecot's auth_failure_delay = 0), for a
	// front end that delays failures itself: counts and lockouts
	// still apply.
	BaseDelay time.Duration
	// MaxDelay caps the delay (15 s).
	MaxDelay time.Duration
	// NetworkLimit is the failures and attempts in flight from one
	// network that stop further attempts (10). Reaching it with
	// failures alone locks the network out for Lockout.
	NetworkLimit int
	// WideNetworkLimit is the failures from one IPv4 /24 or IPv6 /48
	// past which its networks that have failed are refused
	// (4 × NetworkLimit). Its count adds no delay.
	WideNetworkLimit int
	// UserLimit is the failures for one username, from any network,
	// past which it is slowed (30). It never refuses: anyone can make a
	// username fail.
	UserLimit int
	// Forgive is the quiet time after which one failure is forgotten (1 min).
	Forgive time.Duration
	// Lockout is how long a network stays locked (15 min).
	Lockout time.Duration
	// MaxEntries bounds the networks and usernames remembered (65,536);
	// past it the least recently used is forgotten.
	MaxEntries int

	// now is the clock (time.Now); the package's tests set it.
	now func() time.Time
}

// Throttle counts failed logins and says when to slow or refuse more. It
// is safe for concurrent use; its memory is bounded by MaxEntries.
type Throttle struct {
	cfg ThrottleConfig

	mu      sync.Mutex
	entries map[string]*list.Element // of *throttleEntry
	lru     list.List                // front: most recently used
}

type throttleEntry struct {
	key         string
	failures    int
	pending     int       // attempts begun and not yet finished
	last        time.Time // of the last failure, less forgiven periods
	lockedUntil time.Time
}

// NewThrottle returns a Throttle configured by cfg.
func NewThrottle(cfg ThrottleConfig) *Throttle {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.BaseDelay == 0 {
		cfg.BaseDelay = 2 * time.Second
	}
	def(&cfg.MaxDelay, 15*time.Second)
	def(&cfg.Forgive, time.Minute)
	def(&cfg.Lockout, 15*time.Minute)
	if cfg.NetworkLimit <= 0 {
		cfg.NetworkLimit = 10
	}
	if cfg.WideNetworkLimit <= 0 {
		cfg.WideNetworkLimit = 4 * cfg.NetworkLimit
	}
	if cfg.UserLimit <= 0 {
		cfg.UserLimit = 30
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1 << 16
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	return &Throttle{cfg: cfg, entries: make(map[string]*list.Element)}
}

// networkKeys are the throttling keys of a remote address: the network
// (the IPv4 address, or the IPv6 /64) and the wider network (IPv4 /24,
// IPv6 /48). A non-IP address (a Unix socket, a test pipe) is one network
// by its text, with no wider one.
func networkKeys(remote net.Addr) (network, wide string) {
	if remote == nil {
		return "net:", ""
	}
	ip, ok := netaddr.IP(remote)
	if !ok {
		return "net:" + remote.String(), ""
	}
	if ip.Is6() {
		p64, _ := ip.Prefix(64)
		p48, _ := ip.Prefix(48)
		return "net:" + p64.String(), "wide:" + p48.String()
	}
	p24, _ := ip.Prefix(24)
	return "net:" + ip.String(), "wide:" + p24.String()
}

// userKey is the throttling key of a username: case-folded, bounded.
func userKey(username string) string {
	if len(username) > maxUsernameLen {
		username = username[:maxUsernameLen]
	}
	return "user:" + strings.ToLower(username)
}

// Attempt is one login's place in a Throttle, taken by Begin before the
// password is checked. Exactly one of Fail, Succeed and Cancel ends it;
// later calls do nothing.
type Attempt struct {
	t                   *Throttle
	network, wide, user string
	done                bool
}

// Begin takes a place for a login by username from remote, or returns a
// *ThrottledError, without a password being checked, when remote's
// network is locked out or has as many failures and attempts in flight
// as it may.
func (t *Throttle) Begin(remote net.Addr, username string) (*Attempt, error) {
	now := t.cfg.now()
	network, wide := networkKeys(remote)
	user := userKey(username)
	t.mu.Lock()
	defer t.mu.Unlock()
	ne := t.entry(network, now, true)
	if d := ne.lockedUntil.Sub(now); d > 0 {
		return nil, &ThrottledError{RetryAfter: d}
	}
	own := ne.failures + ne.pending
	refuse := own >= t.cfg.NetworkLimit
	if we := t.entry(wide, now, false); we != nil && own > 0 && we.failures >= t.cfg.WideNetworkLimit {
		refuse = true
	}
	if ue := t.entry(user, now, false); ue != nil && ne.failures > 0 && ne.pending > 0 && ue.failures >= t.cfg.UserLimit {
		refuse = true
	}
	if refuse {
		t.drop(ne, now)
		return nil, &ThrottledError{RetryAfter: t.cfg.Forgive}
	}
	ne.pending++
	return &Attempt{t: t, network: network, wide: wide, user: user}, nil
}

// Fail records the attempt as a failed login and returns how long to
// delay the failure reply.
func (a *Attempt) Fail() time.Duration {
	t := a.t
	now := t.cfg.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !a.finish(now) {
		return 0
	}
	if a.wide != "" {
		t.fail(a.wide, 0, now)
	}
	n := max(t.fail(a.network, t.cfg.NetworkLimit, now), t.fail(a.user, 0, now))
	return t.delay(n)
}

// Succeed records a successful login: its place is given back and the
// username's failures are forgotten. The network's are not: an attacker
// holding one valid account must not be able to launder a guessing run
// from the same network.
func (a *Attempt) Succeed() {
	t := a.t
	now := t.cfg.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !a.finish(now) {
		return
	}
	if el, ok := t.entries[a.user]; ok {
		delete(t.entries, a.user)
		t.lru.Remove(el)
	}
}

// Cancel gives the attempt's place back without recording anything, for
// a login that ended without a verdict (a directory error, a closed
// connection).
func (a *Attempt) Cancel() {
	t := a.t
	now := t.cfg.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	a.finish(now)
}

// finish gives back the attempt's place; it reports false when the
// attempt had already ended.
func (a *Attempt) finish(now time.Time) bool {
	if a.done {
		return false
	}
	a.done = true
	if el, ok := a.t.entries[a.network]; ok {
		e := el.Value.(*throttleEntry)
		e.pending = max(e.pending-1, 0)
		a.t.drop(e, now)
	}
	return true
}

// entry returns key's entry with forgiven failures taken off, creating it
// when create is set, and nil otherwise for a key not remembered.
func (t *Throttle) entry(key string, now time.Time, create bool) *throttleEntry {
	if key == "" {
		return nil
	}
	if el, ok := t.entries[key]; ok {
		e := el.Value.(*throttleEntry)
		t.lru.MoveToFront(el)
		t.forgive(e, now)
		return e
	}
	if !create {
		return nil
	}
	t.evict(now)
	e := &throttleEntry{key: key, last: now}
	t.entries[key] = t.lru.PushFront(e)
	return e
}

// drop forgets e when it holds nothing worth remembering, so that the
// logins that succeed do not crowd out the failures.
func (t *Throttle) drop(e *throttleEntry, now time.Time) {
	if e.failures > 0 || e.pending > 0 || e.lockedUntil.After(now) {
		return
	}
	if el, ok := t.entries[e.key]; ok && el.Value == e {
		delete(t.entries, e.key)
		t.lru.Remove(el)
	}
}

// delay is the penalty after n failures: BaseDelay doubled per further
// failure, at most MaxDelay.
func (t *Throttle) delay(n int) time.Duration {
	d := t.cfg.BaseDelay
	if d < 0 {
		return 0
	}
	for i := 1; i < n && d < t.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, t.cfg.MaxDelay)
}

// fail adds a failure to key's entry and returns its count. At limit
// (0: none) the key is locked out.
func (t *Throttle) fail(key string, limit int, now time.Time) int {
	e := t.entry(key, now, true)
	e.failures++
	if e.failures == 1 {
		e.last = now
	}
	n := e.failures
	if limit > 0 && n >= limit {
		e.lockedUntil = now.Add(t.cfg.Lockout)
		// Start afresh after the lockout rather than locking again on
		// the first failure after it.
		e.failures = 0
		e.last = e.lockedUntil
	}
	return n
}

// evict makes room for one entry. The least recently used entry goes,
// except that a few entries still locked out or with attempts in flight
// are passed over, so that an attacker cannot lift a lockout cheaply by
// failing from many other networks to flush it; memory stays bounded all
// the same.
func (t *Throttle) evict(now time.Time) {
	const keptSkips = 8
	skipped := 0
	for len(t.entries) >= t.cfg.MaxEntries {
		oldest := t.lru.Back()
		e := oldest.Value.(*throttleEntry)
		if skipped < keptSkips && (e.lockedUntil.After(now) || e.pending > 0) {
			skipped++
			t.lru.MoveToFront(oldest)
			continue
		}
		delete(t.entries, e.key)
		t.lru.Remove(oldest)
	}
}

// forgive takes from e the failures that quiet time has paid for.
func (t *Throttle) forgive(e *throttleEntry, now time.Time) {
	if e.failures == 0 {
		e.last = now
		return
	}
	elapsed := now.Sub(e.last)
	if elapsed <= 0 {
		return
	}
	n := int(elapsed / t.cfg.Forgive)
	if n >= e.failures {
		e.failures, e.last = 0, now
		return
	}
	e.failures -= n
	e.last = e.last.Add(time.Duration(n) * t.cfg.Forgive)
}

// Len reports how many networks and usernames are remembered.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

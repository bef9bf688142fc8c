package auth

import (
	"container/list"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ErrThrottled matches (with errors.Is) every *ThrottledError.
var ErrThrottled = errors.New("auth: too many failed logins")

// ThrottledError is returned instead of checking a password when the
// client's network or the username has failed too often recently. Servers
// answer it with a temporary error and usually close the connection:
// SMTP "421 4.7.0", IMAP "BYE", POP3 "-ERR [SYS/TEMP]".
type ThrottledError struct {
	// RetryAfter is how long the lockout still lasts.
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
// Every failed login adds one failure to the client's network (its IPv4
// address, or its IPv6 /64, since one host usually owns a whole /64) and
// to the username tried; one failure is forgiven per Forgive of quiet.
// The failure reply is delayed by BaseDelay doubled per failure counted,
// at most MaxDelay, which is Dovecot's auth penalty (2 s up to 15 s). At
// NetworkLimit failures for a network, or UserLimit for a username, logins
// are refused outright for Lockout without checking any password, which
// is mox's per-IP limit: guessing over many parallel connections, which a
// delay alone does not slow, stops there. Failures are also counted per
// wider network (IPv4 /24, IPv6 /48), which locks out at
// WideNetworkLimit, so that an attacker holding many addresses of one
// allocation cannot simply move to the next /64.
type ThrottleConfig struct {
	// BaseDelay is the delay after the first failure (2 s).
	BaseDelay time.Duration
	// MaxDelay caps the delay (15 s).
	MaxDelay time.Duration
	// NetworkLimit is the failures from one network that lock it out (10).
	NetworkLimit int
	// WideNetworkLimit is the failures from one IPv4 /24 or IPv6 /48
	// that lock it out (4 × NetworkLimit). Many users may share such a
	// network, so it is a multiple of NetworkLimit, and it adds no delay.
	WideNetworkLimit int
	// UserLimit is the failures for one username that lock it out (30).
	// It is higher than NetworkLimit because anyone can make a username
	// fail, so reaching it also locks out its owner; it stops guessing
	// spread over many networks.
	UserLimit int
	// Forgive is the quiet time after which one failure is forgotten (1 min).
	Forgive time.Duration
	// Lockout is how long a network or username stays locked (15 min).
	Lockout time.Duration
	// MaxEntries bounds the networks and usernames remembered (65,536);
	// past it the least recently failed is forgotten.
	MaxEntries int
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Throttle counts failed logins and says when to slow or refuse more. It
// is safe for concurrent use; its memory is bounded by MaxEntries.
type Throttle struct {
	cfg ThrottleConfig

	mu      sync.Mutex
	entries map[string]*list.Element // of *throttleEntry
	lru     list.List                // front: most recently failed
}

type throttleEntry struct {
	key         string
	failures    int
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
	def(&cfg.BaseDelay, 2*time.Second)
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
	if cfg.Now == nil {
		cfg.Now = time.Now
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
	var ip netip.Addr
	switch a := remote.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.IPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(remote.String()); err == nil {
			ip = ap.Addr()
		}
	}
	if !ip.IsValid() {
		return "net:" + remote.String(), ""
	}
	ip = ip.Unmap().WithZone("")
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

// Check returns a *ThrottledError when remote's network or username is
// locked out, and nil otherwise.
func (t *Throttle) Check(remote net.Addr, username string) error {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	network, wide := networkKeys(remote)
	var wait time.Duration
	for _, k := range [3]string{network, wide, userKey(username)} {
		if el, ok := t.entries[k]; ok {
			if d := el.Value.(*throttleEntry).lockedUntil.Sub(now); d > wait {
				wait = d
			}
		}
	}
	if wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	return nil
}

// Failure records a failed login and returns how long to delay the
// failure reply.
func (t *Throttle) Failure(remote net.Addr, username string) time.Duration {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	network, wide := networkKeys(remote)
	if wide != "" {
		t.fail(wide, t.cfg.WideNetworkLimit, now)
	}
	n := max(t.fail(network, t.cfg.NetworkLimit, now),
		t.fail(userKey(username), t.cfg.UserLimit, now))
	return t.delay(n)
}

// delay is the penalty after n failures: BaseDelay doubled per further
// failure, at most MaxDelay.
func (t *Throttle) delay(n int) time.Duration {
	d := t.cfg.BaseDelay
	for i := 1; i < n && d < t.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, t.cfg.MaxDelay)
}

// fail adds a failure to key's entry and returns its count.
func (t *Throttle) fail(key string, limit int, now time.Time) int {
	var e *throttleEntry
	if el, ok := t.entries[key]; ok {
		e = el.Value.(*throttleEntry)
		t.lru.MoveToFront(el)
		t.forgive(e, now)
	} else {
		t.evict(now)
		e = &throttleEntry{key: key, last: now}
		t.entries[key] = t.lru.PushFront(e)
	}
	e.failures++
	if e.failures == 1 {
		e.last = now
	}
	n := e.failures
	if n >= limit {
		e.lockedUntil = now.Add(t.cfg.Lockout)
		// Start afresh after the lockout rather than locking again on
		// the first failure after it.
		e.failures = 0
		e.last = e.lockedUntil
	}
	return n
}

// evict makes room for one entry. The least recently failed entry goes,
// except that a few entries still locked out are passed over, so that an
// attacker cannot lift a lockout cheaply by failing from many other
// networks to flush it; memory stays bounded all the same.
func (t *Throttle) evict(now time.Time) {
	const lockedSkips = 8
	skipped := 0
	for len(t.entries) >= t.cfg.MaxEntries {
		oldest := t.lru.Back()
		e := oldest.Value.(*throttleEntry)
		if skipped < lockedSkips && e.lockedUntil.After(now) {
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

// Success records a successful login: the username's failures are
// forgotten. The network's are not: an attacker holding one valid account
// must not be able to launder a guessing run from the same network.
func (t *Throttle) Success(remote net.Addr, username string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := userKey(username)
	if el, ok := t.entries[k]; ok {
		if el.Value.(*throttleEntry).lockedUntil.After(t.cfg.Now()) {
			return
		}
		delete(t.entries, k)
		t.lru.Remove(el)
	}
}

// Len reports how many networks and usernames are remembered.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

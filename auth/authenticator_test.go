package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailagent/mailagent/store"
)

// testParams keeps argon2id cheap in tests; the default costs are
// measured by the benchmarks.
var testParams = Argon2Params{Memory: 64, Time: 1, Threads: 1}

// fakeClock is a settable clock for throttling tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// sleepLog records the failure delays an Authenticator asked for.
type sleepLog struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (s *sleepLog) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delays = append(s.delays, d)
	return nil
}

func (s *sleepLog) Last() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.delays) == 0 {
		return 0
	}
	return s.delays[len(s.delays)-1]
}

// openStore opens a fresh SQLite directory with domain example.org and
// the given users (address → stored hash).
func openStore(t testing.TB, users map[string]string) *store.SQL {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, store.DriverSQLite, filepath.Join(t.TempDir(), "mailagent.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.AddDomain(ctx, "example.org"); err != nil {
		t.Fatal(err)
	}
	for addr, hash := range users {
		if err := s.AddUser(ctx, &store.User{Address: addr, PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

type authFixture struct {
	a     *Authenticator
	store *store.SQL
	clock *fakeClock
	sleep *sleepLog
}

func newAuthFixture(t testing.TB, users map[string]string) *authFixture {
	f := &authFixture{store: openStore(t, users), clock: newFakeClock(), sleep: &sleepLog{}}
	f.a = &Authenticator{
		Users:   f.store,
		Argon2:  testParams,
		now:     f.clock.Now,
		sleepFn: f.sleep.Sleep,
	}
	return f
}

func tcp(s string) net.Addr {
	return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))
}

func netipFrom4(a, b, c, d byte) string { return netip.AddrFrom4([4]byte{a, b, c, d}).String() }

func mustHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := testParams.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func storedHash(t *testing.T, s *store.SQL, addr string) string {
	t.Helper()
	u, err := s.LookupUser(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	return u.PasswordHash
}

func TestAuthenticateOutcomes(t *testing.T) {
	f := newAuthFixture(t, map[string]string{
		"alice@example.org": mustHash(t, "alice pw"),
		"bob@example.org":   mustHash(t, "bob pw"),
	})
	ctx := context.Background()
	if err := f.store.SetDisabled(ctx, "bob@example.org", true); err != nil {
		t.Fatal(err)
	}
	remote := tcp("192.0.2.1:40000")

	u, err := f.a.Authenticate(ctx, "Alice@EXAMPLE.org", "alice pw", remote)
	if err != nil || u.Address != "alice@example.org" {
		t.Fatalf("Authenticate(alice) = %v, %v", u, err)
	}
	if len(f.sleep.delays) != 0 {
		t.Errorf("success delayed by %v", f.sleep.delays)
	}
	for _, c := range []struct{ name, user, pw string }{
		{"wrong password", "alice@example.org", "alice pW"},
		{"unknown user", "nobody@example.org", "alice pw"},
		{"unknown domain", "alice@example.net", "alice pw"},
		{"malformed address", "not an address", "alice pw"},
		{"disabled", "bob@example.org", "bob pw"},
		{"empty password", "alice@example.org", ""},
		{"overlong password", "alice@example.org", strings.Repeat("x", MaxPasswordLen+1)},
		{"overlong username", strings.Repeat("a", 400) + "@example.org", "alice pw"},
	} {
		u, err := f.a.Authenticate(ctx, c.user, c.pw, tcp("198.51.100.7:1"))
		if !errors.Is(err, ErrInvalidCredentials) || u != nil {
			t.Errorf("%s: Authenticate = %v, %v; want ErrInvalidCredentials", c.name, u, err)
		}
	}
	// The argon2id hash with the configured parameters is not rewritten.
	before := storedHash(t, f.store, "alice@example.org")
	if _, err := f.a.Authenticate(ctx, "alice@example.org", "alice pw", remote); err != nil {
		t.Fatal(err)
	}
	if after := storedHash(t, f.store, "alice@example.org"); after != before {
		t.Errorf("current hash rewritten: %q → %q", before, after)
	}
}

// Every legacy scheme logs in and is rewritten as argon2id, after which
// the same password still works and a wrong one still fails.
func TestLegacyHashUpgrade(t *testing.T) {
	users := map[string]string{}
	passwords := map[string]string{}
	for i, tc := range knownAnswers {
		if tc.password == "" || tc.scheme == SchemeSHA256Crypt && strings.Contains(tc.hash, "rounds=") {
			continue
		}
		addr := string(rune('a'+i)) + "user@example.org"
		users[addr] = tc.hash
		passwords[addr] = tc.password
	}
	users["plain@example.org"] = "{PLAIN}plain pw"
	passwords["plain@example.org"] = "plain pw"
	f := newAuthFixture(t, users)
	ctx := context.Background()
	n := 0
	for addr, pw := range passwords {
		n++
		if _, err := f.a.Authenticate(ctx, addr, pw, tcp("192.0.2.1:1")); err != nil {
			t.Errorf("%s (%s): %v", addr, users[addr], err)
			continue
		}
		h := storedHash(t, f.store, addr)
		if !strings.HasPrefix(h, "{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$") {
			t.Errorf("%s: hash after login is %q, want argon2id", addr, h)
		}
		if _, err := f.a.Authenticate(ctx, addr, pw, tcp("192.0.2.1:1")); err != nil {
			t.Errorf("%s: second login with upgraded hash: %v", addr, err)
		}
		if _, err := f.a.Authenticate(ctx, addr, "X"+pw, tcp(netipFrom4(198, 51, 100, byte(n))+":1")); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: wrong password after upgrade: %v", addr, err)
		}
	}
}

func TestKeepLegacyHashes(t *testing.T) {
	f := newAuthFixture(t, map[string]string{"old@example.org": "abNANd1rDfiNc"})
	f.a.KeepLegacyHashes = true
	if _, err := f.a.Authenticate(context.Background(), "old@example.org", "secret", nil); err != nil {
		t.Fatal(err)
	}
	if h := storedHash(t, f.store, "old@example.org"); h != "abNANd1rDfiNc" {
		t.Errorf("hash rewritten to %q with KeepLegacyHashes", h)
	}
}

// failingSetPassword is the real store whose writes fail, as on a
// read-only replica.
type failingSetPassword struct{ *store.SQL }

func (failingSetPassword) SetPassword(context.Context, string, string) error {
	return errors.New("read-only")
}

func TestUpgradeFailureKeepsLogin(t *testing.T) {
	f := newAuthFixture(t, map[string]string{"old@example.org": "abNANd1rDfiNc"})
	f.a.Users = failingSetPassword{f.store}
	u, err := f.a.Authenticate(context.Background(), "old@example.org", "secret", nil)
	if err != nil || u.PasswordHash != "abNANd1rDfiNc" {
		t.Fatalf("Authenticate = %+v, %v; want success with the old hash", u, err)
	}
}

func TestAuthenticateDirectoryError(t *testing.T) {
	f := newAuthFixture(t, map[string]string{"alice@example.org": mustHash(t, "pw")})
	f.store.Close()
	_, err := f.a.Authenticate(context.Background(), "alice@example.org", "pw", nil)
	if err == nil || errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrThrottled) {
		t.Fatalf("Authenticate on a closed directory = %v; want a temporary error", err)
	}
	if f.a.throttle.Len() != 0 {
		t.Error("a directory failure counted as a login failure")
	}
}

func TestAuthenticateRequiresUsers(t *testing.T) {
	if _, err := (&Authenticator{Argon2: testParams}).Authenticate(context.Background(), "a@example.org", "pw", nil); err == nil {
		t.Fatal("Authenticator without Users authenticated")
	}
}

// The failure delay grows 2 s, 4 s, 8 s, 15 s (Dovecot's penalty); ten
// failures lock the network out even for the right password, until the
// lockout ends.
func TestThrottleDelayAndLockout(t *testing.T) {
	f := newAuthFixture(t, map[string]string{"alice@example.org": mustHash(t, "right")})
	ctx := context.Background()
	attacker := tcp("203.0.113.9:5555")
	want := []time.Duration{2, 4, 8, 15, 15, 15, 15, 15, 15, 15}
	for i, w := range want {
		_, err := f.a.Authenticate(ctx, "alice@example.org", "wrong", attacker)
		if !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
		if got := f.sleep.Last(); got != w*time.Second {
			t.Errorf("failure %d delayed %v, want %v", i+1, got, w*time.Second)
		}
	}
	_, err := f.a.Authenticate(ctx, "alice@example.org", "right", attacker)
	var te *ThrottledError
	if !errors.As(err, &te) || !errors.Is(err, ErrThrottled) || te.RetryAfter != 15*time.Minute {
		t.Fatalf("after 10 failures: %v; want *ThrottledError with 15m", err)
	}
	// Another network is not locked out, nor is the user (30 failures).
	if _, err := f.a.Authenticate(ctx, "alice@example.org", "right", tcp("192.0.2.1:1")); err != nil {
		t.Errorf("other network: %v", err)
	}
	f.clock.Advance(14 * time.Minute)
	if _, err := f.a.Authenticate(ctx, "alice@example.org", "right", attacker); !errors.Is(err, ErrThrottled) {
		t.Errorf("before the lockout ends: %v", err)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.a.Authenticate(ctx, "alice@example.org", "right", attacker); err != nil {
		t.Errorf("after the lockout: %v", err)
	}
}

// fail records a failed login by user from addr through th and returns
// its delay; the attempt must be allowed.
func fail(t *testing.T, th *Throttle, addr, user string) time.Duration {
	t.Helper()
	a, err := th.Begin(tcp(addr), user)
	if err != nil {
		t.Fatalf("Begin(%s, %s) = %v, want allowed", addr, user, err)
	}
	return a.Fail()
}

// allowed reports whether th lets user from addr start a login; the
// attempt is cancelled at once.
func allowed(th *Throttle, addr, user string) bool {
	a, err := th.Begin(tcp(addr), user)
	if err != nil {
		return false
	}
	a.Cancel()
	return true
}

func TestThrottleIPv6Prefix(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(ThrottleConfig{now: clock.Now, NetworkLimit: 3})
	for _, a := range []string{"[2001:db8::1]:1", "[2001:db8::ffff:2]:2", "[2001:db8::3%eth0]:3"} {
		fail(t, th, a, "u-"+a)
	}
	if allowed(th, "[2001:db8::abcd]:4", "y") {
		t.Error("same /64 allowed after 3 failures")
	}
	if !allowed(th, "[2001:db8:0:1::1]:4", "y") {
		t.Error("next /64 refused")
	}
	// IPv4-mapped IPv6 counts as the IPv4 address.
	for range 3 {
		fail(t, th, "[::ffff:192.0.2.5]:1", "z")
	}
	if allowed(th, "192.0.2.5:9", "q") {
		t.Error("IPv4 address allowed after 3 failures as IPv4-mapped IPv6")
	}
}

// Attempts take their place before the password is checked: of many
// begun at once from one network, NetworkLimit are let through, and the
// rest refused before any password is verified.
func TestThrottleParallelAttempts(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(ThrottleConfig{now: clock.Now})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		attempts []*Attempt
	)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a, err := th.Begin(tcp(fmt.Sprintf("192.0.2.7:%d", 1000+i)), "victim@example.org"); err == nil {
				mu.Lock()
				attempts = append(attempts, a)
				mu.Unlock()
			} else if !errors.Is(err, ErrThrottled) {
				t.Errorf("Begin: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(attempts) != 10 {
		t.Fatalf("%d of 100 parallel attempts let through, want the allowance of 10", len(attempts))
	}
	for _, a := range attempts {
		a.Fail()
	}
	if allowed(th, "192.0.2.7:1", "victim@example.org") {
		t.Error("network allowed after its allowance failed")
	}
	if !allowed(th, "192.0.2.8:1", "victim@example.org") {
		t.Error("the account is refused to another network")
	}
}

// A success gives its place back: a network with failures is not locked
// out by its own good logins.
func TestThrottleSuccessReturnsPlace(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(ThrottleConfig{now: clock.Now})
	for range 9 {
		fail(t, th, "192.0.2.1:1", "typo@example.org")
	}
	for i := range 50 {
		a, err := th.Begin(tcp("192.0.2.1:1"), "good@example.org")
		if err != nil {
			t.Fatalf("good login %d refused: %v", i, err)
		}
		a.Succeed()
		a.Succeed() // a second end is ignored
	}
	a, err := th.Begin(tcp("192.0.2.1:1"), "x")
	if err != nil {
		t.Fatal(err)
	}
	// The tenth attempt in flight fills the allowance.
	if allowed(th, "192.0.2.1:2", "y") {
		t.Error("attempt beyond the allowance let through while one is in flight")
	}
	a.Cancel()
	if !allowed(th, "192.0.2.1:2", "y") {
		t.Error("a cancelled attempt kept its place")
	}
}

// Guessing spread over the /64s of one /48, or the addresses of one
// IPv4 /24, refuses the networks in it that fail, but never one that
// has not failed.
func TestThrottleWideNetwork(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(ThrottleConfig{now: clock.Now, NetworkLimit: 3, WideNetworkLimit: 8})
	for i := range 8 {
		if d := fail(t, th, fmt.Sprintf("[2001:db8:0:%x::1]:1", i), fmt.Sprint("user", i)); d != 2*time.Second {
			t.Errorf("failure %d delayed %v: the wide network must add no delay", i+1, d)
		}
	}
	if allowed(th, "[2001:db8:0:1::9]:1", "y") {
		t.Error("a /64 that failed, in a /48 past its limit, allowed")
	}
	a, err := th.Begin(tcp("[2001:db8:0:ffff::9]:1"), "y")
	if err != nil {
		t.Fatalf("a /64 that never failed refused: %v", err)
	}
	if allowed(th, "[2001:db8:0:ffff::9]:1", "y") {
		t.Error("a second attempt in flight from a clean /64 of a hot /48 allowed")
	}
	a.Succeed()
	if !allowed(th, "[2001:db8:1::1]:1", "y") {
		t.Error("next /48 refused")
	}
	for i := range 8 {
		fail(t, th, fmt.Sprintf("198.51.100.%d:1", i), "v")
	}
	if allowed(th, "198.51.100.1:1", "w") {
		t.Error("a failing address of a /24 past its limit allowed")
	}
	if !allowed(th, "198.51.100.200:1", "w") {
		t.Error("a clean address of the same /24 refused")
	}
}

// Failures against one username from many networks slow it, never lock
// it: its owner logs in from a network that has not failed.
func TestThrottleUsername(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(ThrottleConfig{now: clock.Now, UserLimit: 3})
	// Each network fails once; the delay grows with the username's count.
	for i, want := range []time.Duration{2, 4, 8, 15, 15} {
		if d := fail(t, th, fmt.Sprintf("192.0.2.%d:1", i+1), "Victim@Example.org"); d != want*time.Second {
			t.Errorf("failure %d on the username delayed %v, want %v", i+1, d, want*time.Second)
		}
	}
	if !allowed(th, "198.51.100.1:1", "victim@example.org") {
		t.Error("username past its ceiling refused to a network that never failed")
	}
	// A network that failed may have one attempt at a time on it.
	a, err := th.Begin(tcp("192.0.2.1:1"), "victim@example.org")
	if err != nil {
		t.Fatalf("failing network refused its one attempt: %v", err)
	}
	if allowed(th, "192.0.2.1:1", "victim@example.org") {
		t.Error("a second parallel attempt from a failing network on a hot username allowed")
	}
	a.Succeed()
	if !allowed(th, "192.0.2.1:1", "victim@example.org") {
		t.Error("username refused after its owner's success")
	}
}

// One failure is forgiven per minute of quiet, and a success forgets the
// username's failures but not the network's.
func TestThrottleForgiveness(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(ThrottleConfig{now: clock.Now})
	ip := "192.0.2.1:1"
	for range 3 {
		fail(t, th, ip, "a")
	}
	clock.Advance(2*time.Minute + 30*time.Second)
	if d := fail(t, th, ip, "b"); d != 4*time.Second {
		t.Errorf("after 2 forgiven: delay %v, want 4s (second failure)", d)
	}
	clock.Advance(time.Hour)
	if d := fail(t, th, ip, "c"); d != 2*time.Second {
		t.Errorf("after an hour: delay %v, want 2s", d)
	}
	fail(t, th, ip, "d")
	a, err := th.Begin(tcp(ip), "d")
	if err != nil {
		t.Fatal(err)
	}
	a.Succeed()
	if d := fail(t, th, "198.51.100.1:1", "d"); d != 2*time.Second {
		t.Errorf("username after success: %v, want 2s", d)
	}
	if d := fail(t, th, ip, "e"); d != 8*time.Second {
		t.Errorf("network after a success: %v, want 8s (not reset)", d)
	}
}

func TestThrottleBoundedMemory(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(ThrottleConfig{now: clock.Now, MaxEntries: 8, NetworkLimit: 2})
	locked := "192.0.2.200:1"
	fail(t, th, locked, "x")
	fail(t, th, locked, "x")
	old := "192.0.2.100:1"
	fail(t, th, old, "x")
	for i := range 1000 {
		clock.Advance(time.Millisecond)
		fail(t, th, netipFrom4(10, 0, byte(i>>8), byte(i))+":1", "user"+string(rune('a'+i%26)))
		if n := th.Len(); n > 8 {
			t.Fatalf("%d entries, want at most 8", n)
		}
	}
	// A flood of failures from other networks forgets old entries but
	// does not lift a lockout.
	if allowed(th, locked, "y") {
		t.Error("lockout flushed by other networks' failures")
	}
	if d := fail(t, th, old, "z"); d != 2*time.Second {
		t.Errorf("old entry kept: delay %v, want the first failure's", d)
	}
	// Successful logins leave nothing behind.
	th = NewThrottle(ThrottleConfig{now: clock.Now})
	for i := range 100000 {
		a, err := th.Begin(tcp(netipFrom4(10, byte(i>>16), byte(i>>8), byte(i))+":1"), fmt.Sprint("user", i))
		if err != nil {
			t.Fatal(err)
		}
		a.Succeed()
	}
	if n := th.Len(); n != 0 {
		t.Errorf("%d entries remembered after 100,000 successful logins, want 0", n)
	}
}

func TestFailureDelayHonoursContext(t *testing.T) {
	f := newAuthFixture(t, map[string]string{"alice@example.org": mustHash(t, "right")})
	f.a.sleepFn = nil // the real timer: 2 s, cut short by the context
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.a.Authenticate(ctx, "alice@example.org", "wrong", nil)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("cancelled Authenticate = %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Authenticate did not return within 1s of its context's cancellation")
	}
}

// Concurrent logins share the throttle and directory safely (run with
// -race) and MaxConcurrent bounds verifications without deadlock.
func TestAuthenticateConcurrent(t *testing.T) {
	f := newAuthFixture(t, map[string]string{"alice@example.org": mustHash(t, "right")})
	f.a.MaxConcurrent = 2
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := "right"
			if i%2 == 1 {
				pw = "wrong"
			}
			_, err := f.a.Authenticate(context.Background(), "alice@example.org", pw, tcp(netipFrom4(192, 0, 2, byte(i))+":1"))
			if (i%2 == 0) != (err == nil) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected outcome: %v", err)
	}
}

package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailagent/mailagent/store"
)

// ErrInvalidCredentials is returned for an unknown user, a wrong password
// and a disabled account alike, so that a client cannot tell which.
var ErrInvalidCredentials = errors.New("auth: invalid credentials")

// maxUsernameLen is the longest username looked up: an address is at most
// 254 octets (RFC 5321 path limit), with room for UTF-8 local parts.
const maxUsernameLen = 320

// UserSource is what an Authenticator needs from the directory. The store
// package's backends satisfy it.
type UserSource interface {
	// LookupUser returns the user, or an error wrapping store.ErrNotFound.
	LookupUser(ctx context.Context, address string) (*store.User, error)
	// SetPassword replaces the user's stored hash.
	SetPassword(ctx context.Context, address, hash string) error
}

// Authenticator checks usernames and passwords for every protocol. Set its
// fields before the first call and do not change them afterwards; it is
// then safe for concurrent use.
type Authenticator struct {
	// Users is where users and their hashes are looked up. Required.
	Users UserSource
	// Throttle counts failures; nil means NewThrottle with default
	// settings and Now as its clock. Give every server of a host the
	// same Authenticator (or Throttle), so that guessing is counted
	// across SMTP AUTH, IMAP and POP3 together.
	Throttle *Throttle
	// Argon2 are the parameters of upgraded hashes; zero means
	// DefaultArgon2Params.
	Argon2 Argon2Params
	// KeepLegacyHashes disables rewriting a legacy hash as argon2id after
	// a successful login, for a directory still shared with a program
	// that cannot read argon2id.
	KeepLegacyHashes bool
	// MaxConcurrent bounds password verifications running at once, since
	// each argon2id verification holds Argon2.Memory; 0 means twice
	// GOMAXPROCS. Logins past it wait (or give up with their context).
	MaxConcurrent int
	// Authorize decides whether user may act as authzid, a SASL
	// authorization identity that differs from its own address, and
	// returns the user to act as. Nil refuses every such request.
	Authorize func(ctx context.Context, user *store.User, authzid string) (*store.User, error)
	// Logger receives one record per failed login; nil discards.
	Logger *slog.Logger

	// now is the clock of the default Throttle, nil meaning time.Now;
	// sleepFn waits out the failure delay, nil meaning a timer cut short
	// by the context. The package's tests set them to observe time and
	// delays without waiting; other packages' tests give a Throttle with
	// short delays.
	now     func() time.Time
	sleepFn func(ctx context.Context, d time.Duration) error

	once     sync.Once
	initErr  error
	throttle *Throttle
	params   Argon2Params
	dummy    string // argon2id hash verified for unknown users
	sem      chan struct{}
	log      *slog.Logger
	verified atomic.Uint64
}

// Verifications reports how many logins have had a password hash
// verified since the Authenticator was made: attempts the throttle
// refused are not among them. It is a metric of the work guessing
// costs, and lets tests check that the throttle holds.
func (a *Authenticator) Verifications() uint64 { return a.verified.Load() }

// ErrAuthzRefused is returned when a SASL client asks to act as another
// identity than its own and Authorize does not allow it.
var ErrAuthzRefused = errors.New("auth: authorization identity refused")

func (a *Authenticator) init() error {
	a.once.Do(func() {
		a.params = a.Argon2
		if a.params == (Argon2Params{}) {
			a.params = DefaultArgon2Params()
		}
		a.throttle = a.Throttle
		if a.throttle == nil {
			a.throttle = NewThrottle(ThrottleConfig{now: a.now})
		}
		n := a.MaxConcurrent
		if n <= 0 {
			n = 2 * runtime.GOMAXPROCS(0)
		}
		a.sem = make(chan struct{}, n)
		a.log = a.Logger
		if a.log == nil {
			a.log = slog.New(slog.DiscardHandler)
		}
		// The dummy hash has the parameters real hashes converge to, so
		// an unknown user costs what a known one does.
		var pw [16]byte
		_, _ = rand.Read(pw[:])
		a.dummy, a.initErr = a.params.Hash(hex.EncodeToString(pw[:]))
		if a.Users == nil && a.initErr == nil {
			a.initErr = errors.New("auth: Authenticator.Users is nil")
		}
	})
	return a.initErr
}

// Authenticate checks username and password for a client at remote and
// returns the user. It returns an error wrapping ErrInvalidCredentials for
// an unknown user, a wrong password or a disabled account, after the
// failure delay; a *ThrottledError (errors.Is ErrThrottled) without
// checking anything when the throttle refuses remote's network (the
// attempt takes its place in the throttle before the password is
// checked, so parallel attempts count as they start); and any other
// error, such as the directory's, as a temporary failure.
//
// Every attempt verifies one argon2id hash with the Authenticator's
// parameters, against a dummy for an unknown user and in addition to a
// legacy hash, so that failures take no less time for an address that
// does not exist than for one that does.
//
// A successful login with a hash that needs upgrading rewrites it as
// argon2id; failing to rewrite it is logged and does not fail the login.
func (a *Authenticator) Authenticate(ctx context.Context, username, password string, remote net.Addr) (*store.User, error) {
	if err := a.init(); err != nil {
		return nil, err
	}
	att, err := a.throttle.Begin(remote, username)
	if err != nil {
		a.log.Info("login refused: throttled", "user", username, "remote", addrString(remote), "err", err)
		return nil, err
	}
	u, upgrade, reason, err := a.check(ctx, username, password)
	if err != nil {
		att.Cancel()
		return nil, err
	}
	if reason != "" {
		delay := att.Fail()
		a.log.Info("login failed", "user", username, "remote", addrString(remote), "reason", reason, "delay", delay)
		if err := a.sleep(ctx, delay); err != nil {
			return nil, err
		}
		return nil, ErrInvalidCredentials
	}
	att.Succeed()
	if upgrade && !a.KeepLegacyHashes {
		a.upgrade(ctx, u, password)
	}
	return u, nil
}

// check verifies the password, returning the user, whether its hash needs
// an upgrade, and for a failure the reason (for the log only). Every path
// verifies one hash, so that all failures cost the same.
func (a *Authenticator) check(ctx context.Context, username, password string) (u *store.User, upgrade bool, reason string, err error) {
	hash := a.dummy
	switch {
	case username == "" || len(username) > maxUsernameLen:
		reason = "malformed username"
	case password == "" || len(password) > MaxPasswordLen:
		reason = "empty or overlong password"
	default:
		// The lookup is made before a verification slot is taken, so
		// that a slow directory holds no slot that a login could use.
		u, err = a.Users.LookupUser(ctx, username)
		switch {
		case errors.Is(err, store.ErrNotFound):
			u, err, reason = nil, nil, "unknown user"
		case err != nil:
			return nil, false, "", fmt.Errorf("auth: looking up %q: %w", username, err)
		default:
			hash = u.PasswordHash
		}
	}
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, false, "", ctx.Err()
	}
	defer func() { <-a.sem }()
	a.verified.Add(1)
	ok, upgrade, verr := a.params.Verify(hash, password)
	if hash != a.dummy && !a.costsLikeDummy(hash) {
		// A legacy hash is far cheaper (or dearer) to check than the
		// dummy: without this, timing would tell apart the addresses
		// that exist with an old hash. Checking the dummy too makes
		// such a login cost at least what an unknown user's does.
		a.params.Verify(a.dummy, password)
	}
	switch {
	case reason != "":
		return nil, false, reason, nil
	case verr != nil:
		a.log.Error("unreadable password hash", "user", u.Address, "err", verr)
		return nil, false, "unreadable hash", nil
	case !ok:
		return nil, false, "wrong password", nil
	case u.Disabled:
		return nil, false, "account disabled", nil
	}
	return u, upgrade, "", nil
}

// costsLikeDummy reports whether verifying hash costs what verifying the
// dummy does: an argon2id hash with the same parameters.
func (a *Authenticator) costsLikeDummy(hash string) bool {
	s, body, err := ParseScheme(hash)
	if err != nil || s != SchemeArgon2ID {
		return false
	}
	h, err := parseArgon2(body)
	return err == nil && h.params == a.params
}

// upgrade rewrites u's hash as argon2id with a's parameters.
func (a *Authenticator) upgrade(ctx context.Context, u *store.User, password string) {
	h, err := a.params.Hash(password)
	if err == nil {
		err = a.Users.SetPassword(ctx, u.Address, h)
	}
	if err != nil {
		a.log.Warn("password hash upgrade failed", "user", u.Address, "err", err)
		return
	}
	u.PasswordHash = h
}

func (a *Authenticator) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if a.sleepFn != nil {
		return a.sleepFn(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

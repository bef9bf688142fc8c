package auth

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// interleaved runs a and b alternately, b.N times each, and reports the
// time per call of each and their ratio. Alternating keeps the ratio
// meaningful on a shared machine whose load drifts during a run, which
// would bias two benchmarks run one after the other; swapping which goes
// first each iteration cancels what one call leaves for the next (such
// as garbage to collect).
func interleaved(tb *testing.B, nameA, nameB string, a, b func()) {
	var da, db time.Duration
	timed := func(f func(), d *time.Duration) {
		t0 := time.Now()
		f()
		*d += time.Since(t0)
	}
	i := 0
	for tb.Loop() {
		if i%2 == 0 {
			timed(a, &da)
			timed(b, &db)
		} else {
			timed(b, &db)
			timed(a, &da)
		}
		i++
	}
	n := float64(tb.N)
	tb.ReportMetric(float64(da.Nanoseconds())/n, nameA+"-ns/op")
	tb.ReportMetric(float64(db.Nanoseconds())/n, nameB+"-ns/op")
	tb.ReportMetric(float64(da)/float64(db), nameA+"/"+nameB)
}

func mustVerify(tb testing.TB, hash, password string) {
	if ok, _, err := VerifyPassword(hash, password); !ok {
		tb.Fatalf("VerifyPassword(%q) = false, %v", hash, err)
	}
}

// BenchmarkArgon2IDVsBcrypt10 measures the cost of DefaultArgon2Params
// against bcrypt at cost 10, the default of most bcrypt libraries and of
// PHP's password_hash, as the baseline.
func BenchmarkArgon2IDVsBcrypt10(b *testing.B) {
	const pw = "correct horse"
	bh, err := bcrypt.GenerateFromPassword([]byte(pw), 10)
	if err != nil {
		b.Fatal(err)
	}
	ah, err := HashPassword(pw)
	if err != nil {
		b.Fatal(err)
	}
	bcryptVerify := func() { mustVerify(b, string(bh), pw) }
	b.Run("Verify", func(b *testing.B) {
		interleaved(b, "argon2id", "bcrypt10", func() { mustVerify(b, ah, pw) }, bcryptVerify)
	})
	b.Run("Hash", func(b *testing.B) {
		interleaved(b, "argon2id", "bcrypt10", func() {
			if _, err := HashPassword(pw); err != nil {
				b.Fatal(err)
			}
		}, bcryptVerify)
	})
}

// BenchmarkLegacyVsBcrypt10 measures a first login's verification with
// each legacy scheme, before its upgrade.
func BenchmarkLegacyVsBcrypt10(b *testing.B) {
	bh, err := bcrypt.GenerateFromPassword([]byte("x"), 10)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, hash, pw string }{
		{"DES", "abNANd1rDfiNc", "secret"},
		{"MD5", "$1$rasmusle$rISCgZzpwk3UhDidwXvin0", "rasmuslerdorf"},
		{"SHA512-5000", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", "Hello world!"},
	} {
		b.Run(c.name, func(b *testing.B) {
			interleaved(b, c.name, "bcrypt10", func() { mustVerify(b, c.hash, c.pw) }, func() { mustVerify(b, string(bh), "x") })
		})
	}
}

// BenchmarkUnknownVsWrongPassword runs Authenticate with the default
// parameters on the SQLite directory: an unknown user must cost what a
// wrong password does (ratio near 1), for a user with an argon2id hash
// and for one with a seed DES crypt hash, so that timing does not tell
// which addresses exist.
func BenchmarkUnknownVsWrongPassword(b *testing.B) {
	h, err := HashPassword("right")
	if err != nil {
		b.Fatal(err)
	}
	s := openStore(b, map[string]string{"alice@example.org": h, "demons@example.org": "abNANd1rDfiNc"})
	a := &Authenticator{
		Users:    s,
		Throttle: NewThrottle(ThrottleConfig{NetworkLimit: 1 << 30, UserLimit: 1 << 30}),
		sleepFn:  func(context.Context, time.Duration) error { return nil },
	}
	ctx := context.Background()
	fail := func(user string) func() {
		return func() {
			if _, err := a.Authenticate(ctx, user, "wrong", nil); err == nil {
				b.Fatal("accepted")
			}
		}
	}
	for _, c := range []struct{ name, user string }{{"Argon2ID", "alice@example.org"}, {"DES", "demons@example.org"}} {
		b.Run(c.name, func(b *testing.B) {
			interleaved(b, "unknown", "wrong", fail("nobody@example.org"), fail(c.user))
		})
	}
}

package auth

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// FuzzVerifyPassword feeds arbitrary stored hashes to the scheme parsers,
// and to verification when the hash's cost is small enough for a fuzzer.
// A hash that is refused never matches; a parsed argon2 or SHA-crypt
// setting formats back to text that parses to the same setting.
func FuzzVerifyPassword(f *testing.F) {
	for _, tc := range knownAnswers {
		f.Add(tc.hash, tc.password)
		f.Add("{"+string(tc.scheme)+"}"+tc.hash, tc.password)
	}
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$dVCOGfWyj4DiMfwbCNDsDxi14T+ad8b8MkV5QLlkqvw", "password")
	f.Add("{PLAIN}x", "x")
	f.Add("{CRYPT}$5$rounds=1000$abc$def", "")
	f.Fuzz(func(t *testing.T, hash, password string) {
		scheme, body, err := ParseScheme(hash)
		if err != nil {
			if ok, _, verr := VerifyPassword(hash, password); ok || verr == nil {
				t.Fatalf("ParseScheme refused %q (%v) but VerifyPassword = %v, %v", hash, err, ok, verr)
			}
			return
		}
		cheap := true
		switch scheme {
		case SchemeArgon2ID, SchemeArgon2I:
			h, err := parseArgon2(body)
			if err != nil {
				return
			}
			again, err := parseArgon2(h.String())
			if err != nil || again.String() != h.String() {
				t.Fatalf("argon2 %q formats as %q, which parses to %v, %v", body, h.String(), again, err)
			}
			cheap = h.params.Memory <= 256 && h.params.Time <= 2
		case SchemeSHA512Crypt, SchemeSHA256Crypt:
			v := shaCryptVariantOf(scheme)
			p, _, err := parseSHACrypt(v, body)
			if err != nil || p.rounds > 5000 {
				return
			}
			out := shaCrypt(v, p, []byte(password))
			q, _, err := parseSHACrypt(v, out)
			if err != nil || q != p {
				t.Fatalf("SHA-crypt setting %+v produced %q, which parses to %+v, %v", p, out, q, err)
			}
		case SchemeBcrypt:
			cost, err := bcrypt.Cost([]byte(body))
			cheap = err == nil && cost <= 5
		}
		if !cheap {
			return
		}
		ok, up, err := VerifyPassword(hash, password)
		if err != nil && (ok || up) {
			t.Fatalf("VerifyPassword(%q) = %v, %v with error %v", hash, ok, up, err)
		}
		if ok && scheme == SchemePlain && body != password {
			t.Fatalf("{PLAIN} %q matched %q", body, password)
		}
	})
}

// FuzzSASL feeds arbitrary client responses to the PLAIN and LOGIN
// servers: no panic, no success without the right password, and every
// exchange ends.
func FuzzSASL(f *testing.F) {
	f.Add("PLAIN", []byte("\x00alice@example.org\x00right"), []byte(nil), []byte(nil))
	f.Add("PLAIN", []byte("alice@example.org\x00alice@example.org\x00wrong"), []byte(nil), []byte(nil))
	f.Add("LOGIN", []byte(nil), []byte("alice@example.org"), []byte("right"))
	f.Add("LOGIN", []byte("alice@example.org"), []byte("wrong"), []byte("extra"))
	fx := saslFixture(f)
	fx.a.Throttle = NewThrottle(ThrottleConfig{NetworkLimit: 1 << 30, UserLimit: 1 << 30, now: fx.clock.Now})
	f.Fuzz(func(t *testing.T, mech string, r1, r2, r3 []byte) {
		s, err := fx.a.NewSASLServer(context.Background(), mech, nil, nil)
		if err != nil {
			return
		}
		for i, r := range [][]byte{r1, r2, r3} {
			_, done, err := s.Next(r)
			if done || err != nil {
				if err == nil && !strings.Contains(string(r1)+string(r2)+string(r3), "right") {
					t.Fatalf("%s succeeded without the password: %q %q %q", mech, r1, r2, r3)
				}
				return
			}
			if i == 2 && len(r) > 0 && strings.EqualFold(mech, MechPlain) {
				t.Fatalf("PLAIN still going after three responses")
			}
		}
	})
}

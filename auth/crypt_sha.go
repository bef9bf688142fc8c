package auth

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt parameters, from Ulrich Drepper's "Unix crypt using SHA-256
// and SHA-512" specification.
const (
	shaCryptDefaultRounds = 5000
	shaCryptMinRounds     = 1000
	shaCryptMaxRounds     = 999_999_999
	shaCryptMaxSalt       = 16
	// shaCryptLimitRounds is the most rounds this server will run for
	// one login (about a second here); the specification allows a
	// billion, which a stored hash must not be able to make us spend.
	shaCryptLimitRounds = 2_000_000
)

// shaCryptVariant describes "$5$" or "$6$".
type shaCryptVariant struct {
	prefix string
	new    func() hash.Hash
	// The digest is encoded in groups of three bytes at indices a,
	// (a+off)%mod, (a+2*off)%mod with a stepping by step%mod; the last
	// one or two bytes are encoded separately (see shaCryptEncode).
	step, off, mod int
}

func shaCryptVariantOf(s Scheme) shaCryptVariant {
	if s == SchemeSHA256Crypt {
		return shaCryptVariant{prefix: "$5$", new: sha256.New, step: 21, off: 10, mod: 30}
	}
	return shaCryptVariant{prefix: "$6$", new: sha512.New, step: 22, off: 21, mod: 63}
}

// shaCryptParams are the parsed setting of a SHA-crypt string.
type shaCryptParams struct {
	rounds         int
	explicitRounds bool // "rounds=" present: it is then repeated in the output
	salt           string
}

// parseSHACrypt splits "$6$[rounds=N$]salt$hash" into its setting and
// hash text.
func parseSHACrypt(v shaCryptVariant, s string) (shaCryptParams, string, error) {
	bad := func(why string) (shaCryptParams, string, error) {
		return shaCryptParams{}, "", fmt.Errorf("%w: %scrypt: %s", ErrUnsupportedHash, v.prefix, why)
	}
	rest, ok := strings.CutPrefix(s, v.prefix)
	if !ok {
		return bad("wrong prefix")
	}
	p := shaCryptParams{rounds: shaCryptDefaultRounds}
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, ok := strings.Cut(r, "$")
		if !ok || num == "" || len(num) > 10 || strings.Trim(num, "0123456789") != "" {
			return bad("malformed rounds")
		}
		n, _ := strconv.Atoi(num)
		p.rounds = min(max(n, shaCryptMinRounds), shaCryptMaxRounds)
		if p.rounds > shaCryptLimitRounds {
			return bad("rounds above this server's limit")
		}
		p.explicitRounds = true
		rest = after
	}
	salt, digest, ok := strings.Cut(rest, "$")
	if !ok {
		return bad("missing hash")
	}
	if len(salt) > shaCryptMaxSalt {
		return bad("salt longer than 16")
	}
	p.salt = salt
	return p, digest, nil
}

// verifySHACrypt checks a "$5$" or "$6$" string.
func verifySHACrypt(s Scheme, stored, password string) (bool, error) {
	v := shaCryptVariantOf(s)
	p, _, err := parseSHACrypt(v, stored)
	if err != nil {
		return false, err
	}
	return equalCrypt(shaCrypt(v, p, []byte(password)), stored), nil
}

// shaCrypt computes the full SHA-crypt string of password for setting p.
// The steps are numbered as in the specification's algorithm.
func shaCrypt(v shaCryptVariant, p shaCryptParams, pw []byte) string {
	salt := []byte(p.salt)
	h := v.new()
	size := h.Size()
	sum := func() []byte { s := h.Sum(nil); h.Reset(); return s }
	// repeat writes the first n bytes of b repeated (b may be shorter).
	repeat := func(b []byte, n int) {
		for ; n > len(b); n -= len(b) {
			h.Write(b)
		}
		h.Write(b[:n])
	}

	// Steps 4-8: digest B.
	h.Write(pw)
	h.Write(salt)
	h.Write(pw)
	b := sum()

	// Steps 1-3, 9-12: digest A.
	h.Write(pw)
	h.Write(salt)
	repeat(b, len(pw))
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(pw)
		}
	}
	a := sum()

	// Steps 13-16: byte sequence P.
	for range len(pw) {
		h.Write(pw)
	}
	dp := sum()
	ps := make([]byte, 0, len(pw))
	for len(ps) < len(pw) {
		ps = append(ps, dp[:min(size, len(pw)-len(ps))]...)
	}

	// Steps 17-20: byte sequence S.
	for range 16 + int(a[0]) {
		h.Write(salt)
	}
	ds := sum()
	ss := ds[:len(salt)] // salt is at most 16 bytes, the digest 32 or 64

	// Step 21: the rounds.
	c := alternateRounds(h, p.rounds, a, ps, ss)

	// Step 22: the string.
	out := make([]byte, 0, 128)
	out = append(out, v.prefix...)
	if p.explicitRounds {
		out = append(out, "rounds="...)
		out = strconv.AppendInt(out, int64(p.rounds), 10)
		out = append(out, '$')
	}
	out = append(out, salt...)
	out = append(out, '$')
	return string(shaCryptEncode(out, v, c))
}

// shaCryptEncode appends the specification's encoding of digest c: bytes
// taken three at a time in a fixed interleaved order, then the rest.
func shaCryptEncode(out []byte, v shaCryptVariant, c []byte) []byte {
	for i := range v.mod / 3 {
		x := i * v.step % v.mod
		y := (x + v.off) % v.mod
		z := (x + 2*v.off) % v.mod
		out = appendCrypt64(out, uint32(c[x])<<16|uint32(c[y])<<8|uint32(c[z]), 4)
	}
	if len(c) == 64 {
		return appendCrypt64(out, uint32(c[63]), 2)
	}
	return appendCrypt64(out, uint32(c[31])<<8|uint32(c[30]), 3)
}

// alternateRounds is the stretching loop MD5-crypt introduced and
// SHA-crypt kept: each round hashes the previous digest c with the
// password-derived bytes p and salt-derived bytes s in an order that
// depends on the round number. It returns the last digest, reusing c.
func alternateRounds(h hash.Hash, rounds int, c, p, s []byte) []byte {
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}
	return c
}

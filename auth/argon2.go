package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters of new hashes.
type Argon2Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// DefaultArgon2Params returns the parameters HashPassword uses: 19 MiB,
// two passes, one thread, the first of the OWASP Password Storage Cheat
// Sheet's equivalent argon2id configurations. Every IMAP and POP3
// connection logs in, and mail clients open several at once, so the cost
// is kept near 20-40 ms per verification on a small server (measured in
// docs/BENCHMARKS.md); the memory cost is what makes GPU guessing
// expensive.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1}
}

const (
	argon2SaltLen = 16
	argon2KeyLen  = 32

	// Bounds on parameters read from a stored hash: a hash with absurd
	// parameters must not make one login allocate gigabytes or spin for
	// minutes.
	argon2MaxMemory = 1 << 20 // KiB, 1 GiB
	argon2MaxTime   = 64
	argon2MinSalt   = 8
	argon2MaxSalt   = 64
	argon2MinKey    = 16
	argon2MaxKey    = 128
)

// Hash returns an argon2id hash of password with parameters p, in PHC
// string format behind Dovecot's "{ARGON2ID}" prefix, as `doveadm pw -s
// ARGON2ID` writes it, so that Dovecot can read the hashes mailagent
// writes and the other way round.
func (p Argon2Params) Hash(password string) (string, error) {
	if len(password) > MaxPasswordLen {
		return "", fmt.Errorf("auth: password longer than %d bytes", MaxPasswordLen)
	}
	if p.Memory < 8*uint32(p.Threads) || p.Time < 1 || p.Threads < 1 ||
		p.Memory > argon2MaxMemory || p.Time > argon2MaxTime {
		return "", fmt.Errorf("auth: invalid argon2 parameters m=%d t=%d p=%d", p.Memory, p.Time, p.Threads)
	}
	salt := make([]byte, argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, argon2KeyLen)
	h := argon2Hash{variant: SchemeArgon2ID, params: p, salt: salt, key: key}
	return "{" + string(SchemeArgon2ID) + "}" + h.String(), nil
}

// argon2Hash is a parsed PHC argon2 string.
type argon2Hash struct {
	variant   Scheme // SchemeArgon2ID or SchemeArgon2I
	params    Argon2Params
	salt, key []byte
}

// String formats h as a PHC string, "$argon2id$v=19$m=..,t=..,p=..$salt$key"
// with unpadded standard base64.
func (h argon2Hash) String() string {
	name := "argon2id"
	if h.variant == SchemeArgon2I {
		name = "argon2i"
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s", name, argon2.Version,
		h.params.Memory, h.params.Time, h.params.Threads,
		b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// parseArgon2 parses a PHC argon2i or argon2id string. Only version 19
// (0x13), the one RFC 9106 specifies, is accepted.
func parseArgon2(s string) (argon2Hash, error) {
	bad := func(why string) (argon2Hash, error) {
		return argon2Hash{}, fmt.Errorf("%w: argon2: %s", ErrUnsupportedHash, why)
	}
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return bad("want $alg$v=19$m=,t=,p=$salt$hash")
	}
	var h argon2Hash
	switch f[1] {
	case "argon2id":
		h.variant = SchemeArgon2ID
	case "argon2i":
		h.variant = SchemeArgon2I
	default:
		return bad("unknown variant")
	}
	if f[2] != "v=19" {
		return bad("version is not 19")
	}
	seen := 0
	for _, kv := range strings.Split(f[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return bad("malformed parameter")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || (len(v) > 1 && v[0] == '0') {
			return bad("malformed parameter value")
		}
		var bit int
		switch k {
		case "m":
			h.params.Memory, bit = uint32(n), 1
		case "t":
			h.params.Time, bit = uint32(n), 2
		case "p":
			if n > 255 {
				return bad("parallelism above 255")
			}
			h.params.Threads, bit = uint8(n), 4
		default:
			return bad("unknown parameter " + strconv.Quote(k))
		}
		if seen&bit != 0 {
			return bad("repeated parameter")
		}
		seen |= bit
	}
	p := h.params
	if seen != 7 || p.Threads < 1 || p.Time < 1 || p.Memory < 8*uint32(p.Threads) {
		return bad("missing or invalid m, t, p")
	}
	if p.Memory > argon2MaxMemory || p.Time > argon2MaxTime {
		return bad("cost above this server's limits")
	}
	var err error
	if h.salt, err = decodeB64(f[4]); err != nil || len(h.salt) < argon2MinSalt || len(h.salt) > argon2MaxSalt {
		return bad("bad salt")
	}
	if h.key, err = decodeB64(f[5]); err != nil || len(h.key) < argon2MinKey || len(h.key) > argon2MaxKey {
		return bad("bad hash")
	}
	return h, nil
}

// decodeB64 decodes PHC base64: standard alphabet, padding optional
// (the PHC format omits it, some writers add it).
func decodeB64(s string) ([]byte, error) {
	return base64.RawStdEncoding.Strict().DecodeString(strings.TrimRight(s, "="))
}

// verify recomputes the key for password and compares in constant time.
func (h argon2Hash) verify(password string) bool {
	p := h.params
	var key []byte
	if h.variant == SchemeArgon2I {
		key = argon2.Key([]byte(password), h.salt, p.Time, p.Memory, p.Threads, uint32(len(h.key)))
	} else {
		key = argon2.IDKey([]byte(password), h.salt, p.Time, p.Memory, p.Threads, uint32(len(h.key)))
	}
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// matches reports whether h is an argon2id hash made with exactly p and
// this package's key length: anything else is rewritten on the next
// successful login, so changing the parameters takes effect over time.
func (h argon2Hash) matches(p Argon2Params) bool {
	return h.variant == SchemeArgon2ID && h.params == p && len(h.key) == argon2KeyLen
}

package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// Scheme is a password scheme, named as Dovecot names it in a "{SCHEME}"
// prefix.
type Scheme string

// The schemes VerifyPassword understands. Only SchemeArgon2ID is
// written; the others exist so that hashes of an existing installation
// keep working until their owners next log in.
const (
	SchemeArgon2ID    Scheme = "ARGON2ID"
	SchemeArgon2I     Scheme = "ARGON2I"
	SchemeBcrypt      Scheme = "BLF-CRYPT"
	SchemeSHA512Crypt Scheme = "SHA512-CRYPT"
	SchemeSHA256Crypt Scheme = "SHA256-CRYPT"
	SchemeMD5Crypt    Scheme = "MD5-CRYPT"
	SchemeDESCrypt    Scheme = "DES-CRYPT"
	SchemePlain       Scheme = "PLAIN"
)

// ErrUnsupportedHash is returned (wrapped, with the reason) for a stored
// hash whose scheme is unknown or whose text is malformed. Such a hash
// never matches any password.
var ErrUnsupportedHash = errors.New("auth: unsupported or malformed password hash")

// Limits on what is hashed or compared. Longer input is refused before
// any work is done, so a client cannot make the server hash megabytes.
const (
	// MaxPasswordLen is the longest password accepted, in bytes.
	MaxPasswordLen = 1024
	// maxHashLen bounds the stored hash text parsed.
	maxHashLen = 1024
)

// schemeByName maps Dovecot's scheme names to the scheme they select.
// CRYPT, Dovecot's name for "whatever crypt(3) format this is", maps to
// the empty scheme: the format is then detected from the text.
func schemeByName(name string) (Scheme, bool) {
	switch strings.ToUpper(name) {
	case "ARGON2ID":
		return SchemeArgon2ID, true
	case "ARGON2I":
		return SchemeArgon2I, true
	case "BLF-CRYPT":
		return SchemeBcrypt, true
	case "SHA512-CRYPT":
		return SchemeSHA512Crypt, true
	case "SHA256-CRYPT":
		return SchemeSHA256Crypt, true
	case "MD5-CRYPT", "MD5": // MD5 is Dovecot's deprecated alias
		return SchemeMD5Crypt, true
	case "DES-CRYPT":
		return SchemeDESCrypt, true
	case "CRYPT":
		return "", true
	case "PLAIN", "CLEAR", "CLEARTEXT":
		return SchemePlain, true
	}
	return "", false
}

// ParseScheme reports the scheme of a stored hash and the text after its
// "{SCHEME}" prefix. A hash without a prefix, or with "{CRYPT}", is
// recognised by its crypt(3) form; a bare string that is no crypt(3) form
// is refused rather than taken as a plain-text password.
func ParseScheme(hash string) (Scheme, string, error) {
	if len(hash) > maxHashLen {
		return "", "", fmt.Errorf("%w: longer than %d bytes", ErrUnsupportedHash, maxHashLen)
	}
	body := hash
	if strings.HasPrefix(hash, "{") {
		end := strings.IndexByte(hash, '}')
		if end < 0 {
			return "", "", fmt.Errorf("%w: unterminated scheme prefix", ErrUnsupportedHash)
		}
		name := hash[1:end]
		s, ok := schemeByName(name)
		if !ok {
			return "", "", fmt.Errorf("%w: unknown scheme %q", ErrUnsupportedHash, name)
		}
		body = hash[end+1:]
		if s != "" {
			return s, body, nil
		}
	}
	s, ok := detectCrypt(body)
	if !ok {
		return "", "", fmt.Errorf("%w: not a known crypt(3) format", ErrUnsupportedHash)
	}
	return s, body, nil
}

// detectCrypt recognises a crypt(3) string by its "$id$" or, for
// traditional DES, by its length and alphabet.
func detectCrypt(s string) (Scheme, bool) {
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return SchemeArgon2ID, true
	case strings.HasPrefix(s, "$argon2i$"):
		return SchemeArgon2I, true
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return SchemeBcrypt, true
	case strings.HasPrefix(s, "$6$"):
		return SchemeSHA512Crypt, true
	case strings.HasPrefix(s, "$5$"):
		return SchemeSHA256Crypt, true
	case strings.HasPrefix(s, "$1$"):
		return SchemeMD5Crypt, true
	case isDESCrypt(s):
		return SchemeDESCrypt, true
	}
	return "", false
}

// VerifyPassword reports whether password matches the stored hash.
// needsUpgrade is true when the hash matched but is not an argon2id hash
// with DefaultArgon2Params, and should be replaced by HashPassword's
// result. err is non-nil (wrapping ErrUnsupportedHash) only when the hash
// cannot be read; ok is then false.
func VerifyPassword(hash, password string) (ok, needsUpgrade bool, err error) {
	return DefaultArgon2Params().Verify(hash, password)
}

// HashPassword returns a new argon2id hash of password with
// DefaultArgon2Params, in the form "{ARGON2ID}$argon2id$v=19$m=...".
func HashPassword(password string) (string, error) {
	return DefaultArgon2Params().Hash(password)
}

// Verify is VerifyPassword with p as the parameters a hash must have not
// to need an upgrade.
func (p Argon2Params) Verify(hash, password string) (ok, needsUpgrade bool, err error) {
	if len(password) > MaxPasswordLen {
		return false, false, nil
	}
	scheme, body, err := ParseScheme(hash)
	if err != nil {
		return false, false, err
	}
	switch scheme {
	case SchemeArgon2ID, SchemeArgon2I:
		h, err := parseArgon2(body)
		if err != nil {
			return false, false, err
		}
		if h.variant != scheme {
			return false, false, fmt.Errorf("%w: prefix %s on a %s hash", ErrUnsupportedHash, scheme, h.variant)
		}
		ok = h.verify(password)
		return ok, ok && !h.matches(p), nil
	case SchemeBcrypt:
		ok, err = verifyBcrypt(body, password)
	case SchemeSHA512Crypt, SchemeSHA256Crypt:
		ok, err = verifySHACrypt(scheme, body, password)
	case SchemeMD5Crypt:
		ok, err = verifyMD5Crypt(body, password)
	case SchemeDESCrypt:
		ok, err = verifyDESCrypt(body, password)
	case SchemePlain:
		ok = subtle.ConstantTimeCompare([]byte(body), []byte(password)) == 1
	}
	return ok, ok, err
}

// equalCrypt compares two crypt(3) strings in constant time.
func equalCrypt(computed, stored string) bool {
	return subtle.ConstantTimeCompare([]byte(computed), []byte(stored)) == 1
}

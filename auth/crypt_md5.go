package auth

import (
	"crypto/md5"
	"fmt"
	"strings"
)

const md5CryptMaxSalt = 8

// verifyMD5Crypt checks a "$1$salt$hash" string (Poul-Henning Kamp's
// MD5-crypt, as in FreeBSD and glibc).
func verifyMD5Crypt(stored, password string) (bool, error) {
	rest, ok := strings.CutPrefix(stored, "$1$")
	if !ok {
		return false, fmt.Errorf("%w: MD5-crypt: wrong prefix", ErrUnsupportedHash)
	}
	salt, _, ok := strings.Cut(rest, "$")
	if !ok || len(salt) > md5CryptMaxSalt {
		return false, fmt.Errorf("%w: MD5-crypt: malformed salt", ErrUnsupportedHash)
	}
	return equalCrypt(md5Crypt([]byte(password), []byte(salt)), stored), nil
}

// md5Crypt computes the full MD5-crypt string of pw with salt.
func md5Crypt(pw, salt []byte) string {
	const magic = "$1$"
	h := md5.New()
	h.Write(pw)
	h.Write(salt)
	h.Write(pw)
	alt := h.Sum(nil)

	h.Reset()
	h.Write(pw)
	h.Write([]byte(magic))
	h.Write(salt)
	for n := len(pw); n > 0; n -= 16 {
		h.Write(alt[:min(n, 16)])
	}
	// The original code writes a zero byte for one bits and the first
	// password byte for zero bits: a quirk every implementation keeps.
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write([]byte{0})
		} else {
			h.Write(pw[:1])
		}
	}
	sum := h.Sum(nil)

	// A thousand rounds, "to slow things down".
	sum = alternateRounds(h, 1000, sum, pw, salt)

	out := make([]byte, 0, 3+len(salt)+1+22)
	out = append(out, magic...)
	out = append(out, salt...)
	out = append(out, '$')
	for i := range 5 {
		third := i + 12
		if i == 4 {
			third = 5
		}
		out = appendCrypt64(out, uint32(sum[i])<<16|uint32(sum[i+6])<<8|uint32(sum[third]), 4)
	}
	return string(appendCrypt64(out, uint32(sum[11]), 2))
}

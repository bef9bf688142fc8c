package auth

// crypt64 is the alphabet of crypt(3) strings: "./0-9A-Za-z", which is
// not base64's order.
const crypt64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// crypt64Index returns the value of crypt(3) alphabet character c, or -1.
func crypt64Index(c byte) int {
	switch {
	case c == '.' || c == '/':
		return int(c - '.')
	case c >= '0' && c <= '9':
		return int(c-'0') + 2
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 12
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 38
	}
	return -1
}

// appendCrypt64 appends the n low-order 6-bit groups of w, least
// significant first, as MD5-crypt and SHA-crypt encode their digests.
func appendCrypt64(dst []byte, w uint32, n int) []byte {
	for ; n > 0; n-- {
		dst = append(dst, crypt64[w&0x3f])
		w >>= 6
	}
	return dst
}

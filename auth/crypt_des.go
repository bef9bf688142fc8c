package auth

import "fmt"

// Traditional DES crypt(3), the scheme of Seventh Edition Unix that
// MySQL's ENCRYPT() called through the C library: the first eight
// password characters (seven bits each) are the DES key, a block of zeros
// is encrypted 25 times, and the two-character salt perturbs DES's
// expansion permutation (E) so that standard DES hardware could not be
// used to search. That perturbation is why crypto/des cannot compute it;
// DES is written out here bit by bit from FIPS 46-3, which is slow by
// DES standards (tens of microseconds) and irrelevant next to argon2id.

// isDESCrypt reports whether s has the form of a traditional DES crypt
// string: 13 characters of the crypt(3) alphabet.
func isDESCrypt(s string) bool {
	if len(s) != 13 {
		return false
	}
	for i := range len(s) {
		if crypt64Index(s[i]) < 0 {
			return false
		}
	}
	// The last character encodes 4 bits followed by two zero bits.
	return crypt64Index(s[12])&3 == 0
}

// verifyDESCrypt checks a 13-character DES crypt string.
func verifyDESCrypt(stored, password string) (bool, error) {
	if !isDESCrypt(stored) {
		return false, fmt.Errorf("%w: DES-crypt: not 13 characters of [./0-9A-Za-z]", ErrUnsupportedHash)
	}
	return equalCrypt(desCrypt([]byte(password), stored[:2]), stored), nil
}

// FIPS 46-3 tables, 1-based bit positions as printed there.
var (
	// desIP is the initial permutation; the final one is its inverse.
	desIP = [64]uint8{
		58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
		62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
		57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
		61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
	}
	// desPC1 selects the 56 key bits, C then D.
	desPC1 = [56]uint8{
		57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
		10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
		63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
		14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
	}
	// desPC2 selects the 48 round-key bits from C and D.
	desPC2 = [48]uint8{
		14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
		23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
		41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
		44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
	}
	// desShifts are the left rotations of C and D before each round.
	desShifts = [16]uint8{1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1}
	// desE expands R from 32 to 48 bits.
	desE = [48]uint8{
		32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9,
		8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
		16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25,
		24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
	}
	// desS are the eight S-boxes, four rows of sixteen.
	desS = [8][64]uint8{
		{14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
			0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
			4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
			15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13},
		{15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
			3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
			0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
			13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9},
		{10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
			13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
			13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
			1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12},
		{7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
			13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
			10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
			3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14},
		{2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
			14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
			4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
			11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3},
		{12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
			10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
			9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
			4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13},
		{4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
			13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
			1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
			6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12},
		{13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
			1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
			7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
			2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11},
	}
	// desP permutes the S-box output.
	desP = [32]uint8{
		16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
		2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
	}
)

// desBits is a 64-bit block, one bit per byte, bit 1 of FIPS 46 first.
type desBits [64]uint8

// desCipher is a DES key schedule with a (possibly salted) E table.
type desCipher struct {
	ks [16][48]uint8
	e  [48]uint8
}

// newDESCipher schedules key, whose bits are given one per byte.
func newDESCipher(key *desBits) *desCipher {
	c := &desCipher{e: desE}
	var cd [56]uint8
	for i, p := range desPC1 {
		cd[i] = key[p-1]
	}
	for r, s := range desShifts {
		for range s {
			// Rotate C (bits 0-27) and D (bits 28-55) left by one.
			c0, d0 := cd[0], cd[28]
			copy(cd[0:27], cd[1:28])
			copy(cd[28:55], cd[29:56])
			cd[27], cd[55] = c0, d0
		}
		for i, p := range desPC2 {
			c.ks[r][i] = cd[p-1]
		}
	}
	return c
}

// salt perturbs E as crypt(3) does: for each of the twelve salt bits that
// is set, E outputs i and i+24 trade places.
func (c *desCipher) salt(bits uint32) {
	for i := range 12 {
		if bits>>i&1 != 0 {
			c.e[i], c.e[i+24] = c.e[i+24], c.e[i]
		}
	}
}

// encrypt enciphers block in place.
func (c *desCipher) encrypt(block *desBits) {
	var lr desBits
	for i, p := range desIP {
		lr[i] = block[p-1]
	}
	l, r := lr[:32], lr[32:]
	var f [32]uint8
	var tmp [32]uint8
	for round := range 16 {
		var x [48]uint8
		for i, p := range c.e {
			x[i] = r[p-1] ^ c.ks[round][i]
		}
		for j := range 8 {
			b := x[6*j : 6*j+6]
			row := b[0]<<1 | b[5]
			col := b[1]<<3 | b[2]<<2 | b[3]<<1 | b[4]
			v := desS[j][row*16+col]
			for k := range 4 {
				f[4*j+k] = v >> (3 - k) & 1
			}
		}
		copy(tmp[:], r)
		for i, p := range desP {
			r[i] = l[i] ^ f[p-1]
		}
		copy(l, tmp[:])
	}
	// The last round does not swap: output is R16 L16.
	var pre desBits
	copy(pre[:32], r)
	copy(pre[32:], l)
	for i, p := range desIP {
		block[p-1] = pre[i]
	}
}

// desCrypt computes the 13-character crypt(3) string of pw with the
// two-character salt.
func desCrypt(pw []byte, salt string) string {
	var key desBits
	for i := 0; i < 8 && i < len(pw); i++ {
		// Seven bits per character, shifted into the high bits; the
		// low (parity) bit is unused by DES.
		c := pw[i] << 1
		for j := range 8 {
			key[8*i+j] = c >> (7 - j) & 1
		}
	}
	c := newDESCipher(&key)
	c.salt(uint32(crypt64Index(salt[0])&0x3f) | uint32(crypt64Index(salt[1])&0x3f)<<6)
	var block desBits
	for range 25 {
		c.encrypt(&block)
	}
	out := []byte(salt[:2])
	for i := 0; i < 66; i += 6 {
		v := 0
		for j := i; j < i+6; j++ {
			v <<= 1
			if j < 64 {
				v |= int(block[j])
			}
		}
		out = append(out, crypt64[v])
	}
	return string(out)
}

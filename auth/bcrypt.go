package auth

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// bcryptMaxPassword is the number of password bytes bcrypt uses. Other
// implementations (crypt(3), PHP, Dovecot) silently ignore the rest;
// golang.org/x/crypto/bcrypt refuses longer passwords instead, so they
// are cut here to match what the hash was made from.
const bcryptMaxPassword = 72

// verifyBcrypt checks a "$2a$", "$2b$" or "$2y$" hash. The three differ
// only in how historic implementations handled non-ASCII bytes; "$2y$"
// (PHP's, Dovecot's) and "$2b$" mean the corrected algorithm, which is
// what golang.org/x/crypto/bcrypt computes for all three.
func verifyBcrypt(hash, password string) (bool, error) {
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return false, fmt.Errorf("%w: bcrypt: %v", ErrUnsupportedHash, err)
	}
	if cost > bcryptMaxCost {
		return false, fmt.Errorf("%w: bcrypt cost %d above %d", ErrUnsupportedHash, cost, bcryptMaxCost)
	}
	pw := []byte(password)
	if len(pw) > bcryptMaxPassword {
		pw = pw[:bcryptMaxPassword]
	}
	switch err := bcrypt.CompareHashAndPassword([]byte(hash), pw); {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("%w: bcrypt: %v", ErrUnsupportedHash, err)
	}
}

// bcryptMaxCost bounds the cost read from a stored hash: cost 31 would
// take days.
const bcryptMaxCost = 16

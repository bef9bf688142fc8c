package auth

import "fmt"

func verifySHACrypt(s Scheme, hash, password string) (bool, error) {
	return false, fmt.Errorf("%w: %s not yet", ErrUnsupportedHash, s)
}
func verifyMD5Crypt(hash, password string) (bool, error) {
	return false, fmt.Errorf("%w: md5 not yet", ErrUnsupportedHash)
}
func verifyDESCrypt(hash, password string) (bool, error) {
	return false, fmt.Errorf("%w: des not yet", ErrUnsupportedHash)
}
func isDESCrypt(s string) bool { return len(s) == 13 }

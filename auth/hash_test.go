package auth

import (
	"crypto/des"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Published vectors: the SHA-crypt specification's own test cases, PHP's
// crypt() documentation examples, and OpenBSD's bcrypt regression tests.
var knownAnswers = []struct {
	scheme   Scheme
	password string
	hash     string
}{
	// SHA-crypt specification.
	{SchemeSHA256Crypt, "Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
	{SchemeSHA256Crypt, "Hello world!", "$5$rounds=5000$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
	{SchemeSHA256Crypt, "Hello world!", "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
	{SchemeSHA256Crypt, "This is just a test", "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5"},
	{SchemeSHA256Crypt, "a very much longer text to encrypt.  This one even stretches over morethan one line.", "$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1"},
	{SchemeSHA256Crypt, "we have a short salt string but not a short password", "$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/"},
	{SchemeSHA256Crypt, "a short string", "$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD"},
	{SchemeSHA256Crypt, "the minimum number is still observed", "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC"},
	{SchemeSHA512Crypt, "Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{SchemeSHA512Crypt, "Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	{SchemeSHA512Crypt, "This is just a test", "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
	{SchemeSHA512Crypt, "a very much longer text to encrypt.  This one even stretches over morethan one line.", "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
	{SchemeSHA512Crypt, "we have a short salt string but not a short password", "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"},
	{SchemeSHA512Crypt, "a short string", "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"},
	{SchemeSHA512Crypt, "the minimum number is still observed", "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
	{SchemeSHA512Crypt, "foo", "$6$$QMXjqd7rHQZPQ1yHsXkQqC1FBzDiVfTHXL.LaeDAeVV.IzMaV9VU4MQ8kPuZa2SOP1A0RPm772EaFYjpEJtdu."},
	// PHP crypt() documentation.
	{SchemeDESCrypt, "rasmuslerdorf", "rl.3StKT.4T8M"},
	{SchemeMD5Crypt, "rasmuslerdorf", "$1$rasmusle$rISCgZzpwk3UhDidwXvin0"},
	{SchemeBcrypt, "rasmuslerdorf", "$2a$07$usesomesillystringfore2uDLvp1Ii2e./U9C8sBjqp8I90dH6hi"},
	// OpenBSD bcrypt regression test.
	{SchemeBcrypt, "", "$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s."},
	// glibc crypt(3), the DES scheme of MySQL ENCRYPT().
	{SchemeDESCrypt, "testtest", "esDRYJnY4VaGM"},
	{SchemeDESCrypt, "secret", "abNANd1rDfiNc"},
}

func TestKnownAnswers(t *testing.T) {
	for _, tc := range knownAnswers {
		ok, up, err := VerifyPassword(tc.hash, tc.password)
		if !ok || !up || err != nil {
			t.Errorf("VerifyPassword(%q, %q) = %v, %v, %v; want true, true, nil", tc.hash, tc.password, ok, up, err)
		}
		ok, up, err = VerifyPassword(tc.hash, "X"+tc.password)
		if ok || up || err != nil {
			t.Errorf("VerifyPassword(%q, wrong) = %v, %v, %v; want false, false, nil", tc.hash, ok, up, err)
		}
		// Dovecot's prefixes, its scheme's and CRYPT's, select the same
		// verification of the same text.
		for _, stored := range []string{tc.hash, "{" + string(tc.scheme) + "}" + tc.hash, "{crypt}" + tc.hash} {
			s, body, err := ParseScheme(stored)
			if err != nil || s != tc.scheme || body != tc.hash {
				t.Errorf("ParseScheme(%q) = %q, %q, %v; want %q, %q", stored, s, body, err, tc.scheme, tc.hash)
			}
		}
	}
	if ok, _, err := VerifyPassword("{SHA512-CRYPT}"+knownAnswers[8].hash, knownAnswers[8].password); !ok || err != nil {
		t.Errorf("prefixed SHA512-CRYPT: %v, %v", ok, err)
	}
}

// TestDESCoreMatchesFIPS checks the bit-level DES used by crypt(3)
// against crypto/des: with the salt bits all zero, crypt's DES is plain
// DES.
func TestDESCoreMatchesFIPS(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var key, block [8]byte
		for i := range 8 {
			key[i], block[i] = byte(r.Uint32()), byte(r.Uint32())
		}
		std, err := des.NewCipher(key[:])
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 8)
		std.Encrypt(want, block[:])

		kb, bb := toBits(key), toBits(block)
		newDESCipher(&kb).encrypt(&bb)
		if got := fromBits(bb); got != [8]byte(want) {
			t.Fatalf("key %x block %x: got %x, want %x", key, block, got, want)
		}
	}
}

func toBits(b [8]byte) desBits {
	var d desBits
	for i := range 64 {
		d[i] = b[i/8] >> (7 - i%8) & 1
	}
	return d
}

func fromBits(d desBits) [8]byte {
	var b [8]byte
	for i := range 64 {
		b[i/8] |= d[i] << (7 - i%8)
	}
	return b
}

// DES crypt uses eight characters of seven bits: the rest never counted,
// which is one more reason to upgrade such hashes.
func TestDESCryptTruncates(t *testing.T) {
	for _, pw := range []string{"secret12", "secret12and more", "secret12" + "\xff"} {
		if got := desCrypt([]byte(pw), "ab"); got != desCrypt([]byte("secret12"), "ab") {
			t.Errorf("desCrypt(%q) = %q differs from the 8-character prefix's", pw, got)
		}
	}
	if desCrypt([]byte("\xe1"), "ab") != desCrypt([]byte("a"), "ab") {
		t.Error("the eighth bit of a character must be ignored")
	}
}

func TestHashPasswordRoundTrip(t *testing.T) {
	p := Argon2Params{Memory: 64, Time: 1, Threads: 1}
	h, err := p.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q lacks the Dovecot form", h)
	}
	if ok, up, err := p.Verify(h, "correct horse"); !ok || up || err != nil {
		t.Errorf("Verify(own hash) = %v, %v, %v; want true, false, nil", ok, up, err)
	}
	if ok, _, _ := p.Verify(h, "correct horsE"); ok {
		t.Error("wrong password accepted")
	}
	// A change of parameters marks old hashes for upgrade.
	q := Argon2Params{Memory: 128, Time: 1, Threads: 1}
	if ok, up, _ := q.Verify(h, "correct horse"); !ok || !up {
		t.Errorf("Verify with other params = %v, %v; want true, true", ok, up)
	}
	h2, _ := p.Hash("correct horse")
	if h2 == h {
		t.Error("two hashes of one password are equal: salt not random")
	}
}

// A hash that Dovecot's `doveadm pw -s ARGON2ID -p secret` wrote verifies,
// prefixed as Dovecot stores it and as the bare PHC string.
func TestArgon2FromDovecot(t *testing.T) {
	const phc = "$argon2id$v=19$m=65536,t=3,p=1$a7jNrUPuWhCKXiXf9HGKOw$Ho81qZ7QRG8nXa+oUWyh12Lu73I3YBmR/KpadOfYvTY"
	ok, up, err := VerifyPassword("{ARGON2ID}"+phc, "secret")
	if !ok || !up || err != nil {
		t.Errorf("VerifyPassword = %v, %v, %v; want true, true (other parameters than the default), nil", ok, up, err)
	}
	if ok, _, err := VerifyPassword(phc, "Secret"); ok || err != nil {
		t.Errorf("bare PHC string, wrong password: %v, %v", ok, err)
	}
}

func TestMalformedHashes(t *testing.T) {
	for _, h := range []string{
		"", "secret", "{SHA512-CRYPT", "{NOPE}abc", "{ARGON2ID}$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$dVCOGfWyj4DiMfwbCNDsDxi14T+ad8b8MkV5QLlkqvw",
		"$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHQ$dVCOGfWyj4DiMfwbCNDsDxi14T+ad8b8MkV5QLlkqvw",
		"$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$dVCOGfWyj4DiMfwbCNDsDxi14T+ad8b8MkV5QLlkqvw",
		"$argon2id$v=19$m=64,t=1,p=1,m=64$c29tZXNhbHQ$dVCOGfWyj4DiMfwbCNDsDxi14T+ad8b8MkV5QLlkqvw",
		"$argon2id$v=19$m=64,t=1$c29tZXNhbHQ$dVCOGfWyj4DiMfwbCNDsDxi14T+ad8b8MkV5QLlkqvw",
		"$6$rounds=999999999$salt$x", "$6$rounds=$salt$x", "$6$saltonly", "$6$seventeen-chars-salt$x",
		"$1$toolongsalt$x", "$2y$31$usesomesillystringfore2uDLvp1Ii2e./U9C8sBjqp8I90dH6hi", "$2a$07$short",
		"rl.3StKT.4T8N", "rl.3StKT.4T8", "rl.3StKT:4T8M",
	} {
		ok, up, err := VerifyPassword(h, "rasmuslerdorf")
		if ok || up || !errors.Is(err, ErrUnsupportedHash) {
			t.Errorf("VerifyPassword(%q) = %v, %v, %v; want false, false, ErrUnsupportedHash", h, ok, up, err)
		}
	}
}

func TestPlainScheme(t *testing.T) {
	for _, h := range []string{"{PLAIN}s3cret", "{clear}s3cret", "{CLEARTEXT}s3cret"} {
		if ok, up, err := VerifyPassword(h, "s3cret"); !ok || !up || err != nil {
			t.Errorf("VerifyPassword(%q) = %v, %v, %v", h, ok, up, err)
		}
		if ok, _, _ := VerifyPassword(h, "s3cre"); ok {
			t.Errorf("%q: prefix of the password accepted", h)
		}
	}
}

func TestBcryptLongPassword(t *testing.T) {
	// crypt(3) and PHP ignore the bytes past 72; x/crypto/bcrypt refuses
	// such passwords, so they are cut before comparing.
	long := strings.Repeat("a", 80)
	h, err := bcrypt.GenerateFromPassword([]byte(long[:72]), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := VerifyPassword(string(h), long); !ok || err != nil {
		t.Errorf("80-byte password against the hash of its first 72 bytes: %v, %v", ok, err)
	}
}

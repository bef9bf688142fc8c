package auth

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/mailagent/mailagent/internal/interop"
)

// needMySQL opens MAILAGENT_MYSQL_DSN, skipping when it is unset unless
// MAILAGENT_INTEROP=1 demands it.
func needMySQL(t *testing.T) *sql.DB {
	t.Helper()
	dsn := interop.MySQLDSN(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("MariaDB at MAILAGENT_MYSQL_DSN: %v", err)
	}
	return db
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// randomPassword returns printable passwords of varied lengths, crossing
// the 16-byte and 64-byte boundaries where crypt algorithms repeat
// digests, with spaces and non-ASCII bytes.
func randomPasswords(r *rand.Rand) []string {
	var out []string
	for _, n := range []int{1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100} {
		var b strings.Builder
		for b.Len() < n {
			switch r.IntN(10) {
			case 0:
				b.WriteString("é")
			case 1:
				b.WriteByte(' ')
			default:
				b.WriteByte(byte('!' + r.IntN(94)))
			}
		}
		out = append(out, b.String())
	}
	return out
}

func randomSalt(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = crypt64[r.IntN(64)]
	}
	return string(b)
}

// TestOpenSSLPasswd checks MD5-crypt and SHA-crypt against openssl
// passwd -1, -5 and -6 (one run per setting, hashing every password).
func TestOpenSSLPasswd(t *testing.T) {
	t.Parallel()
	openssl := interop.Program(t, "openssl")
	r := rand.New(rand.NewPCG(3, 4))
	pws := randomPasswords(r)
	for _, c := range []struct {
		flag    string
		saltLen int
	}{{"-1", 8}, {"-5", 16}, {"-6", 16}, {"-6", 3}} {
		salt := randomSalt(r, c.saltLen)
		hashes := strings.Split(run(t, openssl, append([]string{"passwd", c.flag, "-salt", salt}, pws...)...), "\n")
		if len(hashes) != len(pws) {
			t.Fatalf("openssl passwd %s: %d hashes for %d passwords", c.flag, len(hashes), len(pws))
		}
		for i, h := range hashes {
			ok, up, err := VerifyPassword(h, pws[i])
			if !ok || !up || err != nil {
				t.Errorf("openssl passwd %s -salt %s %q = %q: VerifyPassword = %v, %v, %v", c.flag, salt, pws[i], h, ok, up, err)
			}
		}
	}
}

// TestLibcCrypt checks DES crypt and bcrypt against the C library's
// crypt(3), which perl exposes.
func TestLibcCrypt(t *testing.T) {
	perl := interop.Program(t, "perl")
	r := rand.New(rand.NewPCG(5, 6))
	var args []string // password, setting, password, setting...
	for _, pw := range randomPasswords(r) {
		args = append(args, pw, randomSalt(r, 2))
		// 22 salt characters, the last carrying 4 bits.
		args = append(args, pw, "$2b$04$"+randomSalt(r, 21)+"u")
	}
	out := run(t, perl, append([]string{"-e", `while (@ARGV) { my ($p, $s) = splice(@ARGV, 0, 2); print crypt($p, $s), "\n" }`}, args...)...)
	hashes := strings.Split(out, "\n")
	if len(hashes) != len(args)/2 {
		t.Fatalf("perl printed %d hashes for %d passwords", len(hashes), len(args)/2)
	}
	for i, h := range hashes {
		pw, setting := args[2*i], args[2*i+1]
		if !strings.HasPrefix(h, setting[:2]) {
			t.Fatalf("crypt(%q, %q) = %q", pw, setting, h)
		}
		ok, up, err := VerifyPassword(h, pw)
		if !ok || !up || err != nil {
			t.Errorf("crypt(%q, %q) = %q: VerifyPassword = %v, %v, %v", pw, setting, h, ok, up, err)
		}
		if !strings.HasPrefix(h, "$") {
			if got := desCrypt([]byte(pw), setting); got != h {
				t.Errorf("desCrypt(%q, %q) = %q, crypt(3) = %q", pw, setting, got, h)
			}
		}
	}
}

// TestMariaDBEncrypt checks DES crypt against MariaDB's ENCRYPT(), with
// and without an explicit salt: the function the seed installation stored
// every password with.
func TestMariaDBEncrypt(t *testing.T) {
	db := needMySQL(t)
	r := rand.New(rand.NewPCG(7, 8))
	ctx := context.Background()
	for _, pw := range randomPasswords(r) {
		salt := randomSalt(r, 2)
		var salted, unsalted string
		if err := db.QueryRowContext(ctx, "SELECT ENCRYPT(?, ?), ENCRYPT(?)", pw, salt, pw).Scan(&salted, &unsalted); err != nil {
			t.Fatal(err)
		}
		if got := desCrypt([]byte(pw), salt); got != salted {
			t.Errorf("ENCRYPT(%q, %q) = %q, desCrypt = %q", pw, salt, salted, got)
		}
		for _, h := range []string{salted, unsalted} {
			if ok, up, err := VerifyPassword(h, pw); !ok || !up || err != nil {
				t.Errorf("ENCRYPT(%q) = %q: VerifyPassword = %v, %v, %v", pw, h, ok, up, err)
			}
		}
	}
}

// TestDovecotInterop checks that Dovecot verifies the hashes HashPassword
// writes, and that VerifyPassword accepts what doveadm writes, for every
// scheme both know.
func TestDovecotInterop(t *testing.T) {
	t.Parallel()
	doveadm := interop.Program(t, "doveadm")
	const pw = "correct horse battery"
	ours, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	// doveadm pw -t exits 0 and prints "(verified)" on a match.
	if out := run(t, doveadm, "pw", "-t", ours, "-p", pw); !strings.Contains(out, "verified") {
		t.Errorf("doveadm pw -t %q: %s", ours, out)
	}
	if err := exec.Command(doveadm, "pw", "-t", ours, "-p", pw+"!").Run(); err == nil {
		t.Errorf("doveadm accepted a wrong password for %q", ours)
	}
	for _, s := range []Scheme{SchemeArgon2ID, SchemeArgon2I, SchemeBcrypt, SchemeSHA512Crypt, SchemeSHA256Crypt, SchemeMD5Crypt, SchemeDESCrypt, SchemePlain} {
		h := run(t, doveadm, "pw", "-s", string(s), "-p", pw)
		if !strings.HasPrefix(h, fmt.Sprintf("{%s}", s)) {
			t.Errorf("doveadm pw -s %s wrote %q", s, h)
		}
		ok, up, err := VerifyPassword(h, pw)
		if !ok || !up || err != nil {
			t.Errorf("doveadm's %q: VerifyPassword = %v, %v, %v", h, ok, up, err)
		}
	}
}

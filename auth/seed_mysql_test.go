package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/mailagent/mailagent/store"
)

// The seed installation's CREATE TABLE statements, verbatim.
var seedSchema = []string{
	"CREATE TABLE domains (domain varchar(50) NOT NULL, PRIMARY KEY (domain) );",
	"CREATE TABLE forwardings (source varchar(80) NOT NULL, destination TEXT NOT NULL, PRIMARY KEY (source) );",
	"CREATE TABLE users (email varchar(80) NOT NULL, password varchar(20) NOT NULL, PRIMARY KEY (email) );",
	"CREATE TABLE transport ( domain varchar(128) NOT NULL default '', transport varchar(128) NOT NULL default '', UNIQUE KEY domain (domain) );",
}

// The statements above are the seed document's, when it is at hand
// (beside the repository, as in the project's working layout).
func TestSeedSchemaIsVerbatim(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "shared", "seed", "000_2eb25083460d698b.txt"))
	if err != nil {
		t.Skipf("seed document not at hand: %v", err)
	}
	for _, stmt := range seedSchema {
		if !strings.Contains(string(doc), stmt) {
			t.Errorf("not in the seed document: %s", stmt)
		}
	}
}

// TestSeedInstallationLogin is the migration story end to end: a MariaDB
// database made by the seed's SQL, with a user added the seed's way
// (ENCRYPT('secret'), a DES crypt), opens with the store, resolves the
// address to a local mailbox, logs in with the old password, and finds
// the stored hash rewritten as argon2id.
func TestSeedInstallationLogin(t *testing.T) {
	admin := needMySQL(t)
	ctx := context.Background()

	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	dbName := "mailagent_auth_seed_" + hex.EncodeToString(rnd[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE "+dbName); err != nil {
			t.Errorf("dropping %s: %v", dbName, err)
		}
	})
	cfg, err := mysql.ParseDSN(os.Getenv("MAILAGENT_MYSQL_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = dbName
	dsn := cfg.FormatDSN()

	seed, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	for _, stmt := range seedSchema {
		if _, err := seed.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	for _, stmt := range []string{
		"INSERT INTO domains (domain) VALUES ('example.org');",
		"INSERT INTO users (email, password) VALUES ('demons@example.org', ENCRYPT('secret'));",
	} {
		if _, err := seed.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	storedPassword := func() string {
		t.Helper()
		var h string
		if err := seed.QueryRowContext(ctx, "SELECT password FROM users WHERE email = 'demons@example.org'").Scan(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	if h := storedPassword(); !isDESCrypt(h) {
		t.Fatalf("ENCRYPT('secret') stored %q, not a DES crypt", h)
	}

	dir, err := store.Open(ctx, store.DriverMySQL, dsn, &store.Options{Migrate: true})
	if err != nil {
		t.Fatalf("store.Open on the seed database: %v", err)
	}
	defer dir.Close()

	res, err := dir.Resolve(ctx, "demons@example.org")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if len(res.Local) != 1 || res.Local[0].Address != "demons@example.org" || len(res.Remote) != 0 {
		t.Fatalf("Resolve = %+v, want the one local mailbox", res)
	}

	a := &Authenticator{Users: dir, sleepFn: (&sleepLog{}).Sleep}
	remote := tcp("192.0.2.25:34567")
	if _, err := a.Authenticate(ctx, "demons@example.org", "not secret", remote); err == nil {
		t.Fatal("wrong password accepted")
	}
	if !isDESCrypt(storedPassword()) {
		t.Fatal("a failed login changed the stored hash")
	}
	u, err := a.Authenticate(ctx, "demons@example.org", "secret", remote)
	if err != nil {
		t.Fatalf("Authenticate with the seed password: %v", err)
	}
	h := storedPassword()
	if !strings.HasPrefix(h, "{ARGON2ID}$argon2id$v=19$") || u.PasswordHash != h {
		t.Fatalf("stored hash after login %q (user has %q), want argon2id", h, u.PasswordHash)
	}
	if ok, up, err := VerifyPassword(h, "secret"); !ok || up || err != nil {
		t.Errorf("upgraded hash: VerifyPassword = %v, %v, %v; want true, false, nil", ok, up, err)
	}
	if _, err := a.Authenticate(ctx, "demons@example.org", "secret", remote); err != nil {
		t.Errorf("login with the upgraded hash: %v", err)
	}
}

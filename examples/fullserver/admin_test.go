package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/internal/interop"
	"github.com/mailagent/mailagent/store"
)

// fs runs the command line in args against the data directory dir with
// stdin as standard input, and returns its exit status and output.
func fs(t *testing.T, dir, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"-data", dir}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// ok runs a command that must succeed and returns its standard output.
func ok(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	code, out, errs := fs(t, dir, stdin, args...)
	if code != 0 || errs != "" {
		t.Fatalf("fullserver %s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
	}
	return out
}

// fails runs a command that must fail with status code and one line on
// standard error containing want.
func fails(t *testing.T, dir, stdin string, code int, want string, args ...string) {
	t.Helper()
	c, out, errs := fs(t, dir, stdin, args...)
	if c != code || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, want) {
		t.Fatalf("fullserver %s: exit %d, stdout %q, stderr %q; want exit %d and one line with %q",
			strings.Join(args, " "), c, out, errs, code, want)
	}
}

func openDir(t *testing.T, dir string) *store.SQL {
	t.Helper()
	st, err := store.Open(context.Background(), store.DriverSQLite, filepath.Join(dir, "mailagent.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestHelpPrintsUsage(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"help"}, strings.NewReader(""), &out, &errb)
	if code != 0 || errb.Len() != 0 || !strings.HasPrefix(out.String(), "usage: fullserver") ||
		!strings.Contains(out.String(), "transport set DOMAIN SPEC") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestAdminCommands(t *testing.T) {
	ctx := context.Background()
	// -data names a directory that exists (no command creates one); the
	// database is created in it on first use.
	dir := filepath.Join(t.TempDir(), "data")
	fails(t, dir, "", 1, "no directory exists at "+dir, "domain", "add", "Example.ORG")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}

	ok(t, dir, "", "domain", "add", "Example.ORG")
	ok(t, dir, "", "domain", "add", "xn--bcher-kva.example")
	fails(t, dir, "", 1, "already exists", "domain", "add", "example.org")
	fails(t, dir, "", 1, "invalid", "domain", "add", "bad_domain")
	if got := ok(t, dir, "", "domain", "list"); got != "bücher.example\nexample.org\n" {
		t.Fatalf("domain list = %q", got)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory: %v, %v", fi, err)
	}

	// Passwords come from standard input, one line; the stored hash
	// verifies with package auth.
	ok(t, dir, "s3cret pass\r\nignored\n", "user", "add", "Alice@example.org")
	ok(t, dir, "x", "user", "add", "-force", "bob@bücher.example")
	st := openDir(t, dir)
	u, err := st.LookupUser(ctx, "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if good, _, err := auth.VerifyPassword(u.PasswordHash, "s3cret pass"); !good || err != nil {
		t.Fatalf("stored hash %q does not verify: %v", u.PasswordHash, err)
	}
	fails(t, dir, "", 1, "empty password", "user", "add", "carol@example.org")
	fails(t, dir, "pw\n", 2, "wrong number of arguments", "user", "add", "carol@example.org", "pw")
	fails(t, dir, "pw\n", 1, "relay hack", "user", "add", "a%b@example.org")
	fails(t, dir, "long-enough-1\n", 1, "not local", "user", "add", "x@remote.example")
	fails(t, dir, "long-enough-1\n", 1, "already exists", "user", "add", "ALICE@example.org")
	// Weak passwords: too short, or the address; -force takes them.
	fails(t, dir, "short12\n", 1, "password too short: 7 characters, limits.min_password_length is 8 (give -force to set it anyway)", "user", "add", "carol@example.org")
	fails(t, dir, "Carol@Example.org\n", 1, "password is the user's address", "user", "add", "carol@example.org")
	fails(t, dir, "carol\n", 1, "password too short", "user", "add", "carol@example.org")
	fails(t, dir, "caroline\n", 1, "password is the user's address", "user", "add", "caroline@example.org")
	fails(t, dir, "pw\n", 1, "password too short", "user", "passwd", "alice@example.org")
	fails(t, dir, strings.Repeat("x", 5000), 1, "too long", "user", "add", "carol@example.org")
	if _, err := st.LookupUser(ctx, "carol@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("failed add left a user: %v", err)
	}

	ok(t, dir, "new one\n", "user", "passwd", "--force", "alice@EXAMPLE.org")
	fails(t, dir, "pw\n", 1, "not found", "user", "passwd", "nobody@example.org")
	ok(t, dir, "", "user", "disable", "alice@example.org")
	ok(t, dir, "", "user", "quota", "alice@example.org", "1048576", "0")
	u, err = st.LookupUser(ctx, "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if good, _, _ := auth.VerifyPassword(u.PasswordHash, "new one"); !good || !u.Disabled || u.QuotaBytes != 1<<20 {
		t.Fatalf("after passwd, disable, quota: %+v", u)
	}
	if got := ok(t, dir, "", "user", "list"); got !=
		"Alice@example.org\texample.org/alice/Maildir\tdisabled\tquota=1048576/0\nbob@bücher.example\tbücher.example/bob/Maildir\n" {
		t.Fatalf("user list = %q", got)
	}
	ok(t, dir, "", "user", "enable", "alice@example.org")
	if got := ok(t, dir, "", "user", "list", "bücher.example"); got != "bob@bücher.example\tbücher.example/bob/Maildir\n" {
		t.Fatalf("user list DOMAIN = %q", got)
	}
	fails(t, dir, "", 2, "number", "user", "quota", "alice@example.org", "-1", "0")

	ok(t, dir, "", "alias", "add", "info@example.org", "alice@example.org, friend@remote.example")
	ok(t, dir, "", "alias", "add", "@example.org", "alice@example.org")
	fails(t, dir, "", 1, "already exists", "alias", "add", "info@example.org", "bob@bücher.example")
	fails(t, dir, "", 1, "invalid address", "alias", "add", "x@example.org", "a!b@example.org")
	if got := ok(t, dir, "", "alias", "list"); got != "@example.org\talice@example.org\ninfo@example.org\talice@example.org,friend@remote.example\n" {
		t.Fatalf("alias list = %q", got)
	}
	r, err := st.Resolve(ctx, "info@example.org")
	if err != nil || len(r.Local) != 1 || r.Local[0].Address != "Alice@example.org" || len(r.Remote) != 1 {
		t.Fatalf("Resolve(info) = %+v, %v", r, err)
	}
	fails(t, dir, "", 1, "still has users", "domain", "del", "example.org")
	ok(t, dir, "", "alias", "del", "info@example.org")
	fails(t, dir, "", 1, "not found", "alias", "del", "info@example.org")

	ok(t, dir, "", "transport", "set", "relay.example", "smtp:[192.0.2.1]:587")
	ok(t, dir, "", "transport", "set", "example.org", "lmtp:unix:/run/dovecot/lmtp")
	fails(t, dir, "", 1, "invalid transport", "transport", "set", "example.org", "lmtp:host:99999")
	if got := ok(t, dir, "", "transport", "list"); got != "example.org\tlmtp:unix:/run/dovecot/lmtp\nrelay.example\tsmtp:[192.0.2.1]:587\n" {
		t.Fatalf("transport list = %q", got)
	}
	ok(t, dir, "", "transport", "del", "relay.example")
	if _, err := st.Transport(ctx, "relay.example"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted transport: %v", err)
	}

	ok(t, dir, "", "alias", "del", "@example.org")
	ok(t, dir, "", "user", "del", "alice@example.org")
	fails(t, dir, "", 1, "not found", "user", "del", "alice@example.org")
	ok(t, dir, "", "domain", "del", "example.org")
	if local, _ := st.IsLocalDomain(ctx, "example.org"); local {
		t.Fatal("deleted domain still local")
	}

	fails(t, dir, "", 2, "unknown command", "serve-coffee")
	fails(t, dir, "", 2, "unknown verb", "alias", "rename")
	fails(t, dir, "", 2, "missing verb", "user")
	fails(t, dir, "", 2, "flag provided but not defined", "-bogus", "domain", "list")
}

// TestConfigFile checks that -config selects the database and that an
// explicit -data wins over the file's data_dir.
func TestConfigFile(t *testing.T) {
	root := t.TempDir()
	cfgPath := filepath.Join(root, "fullserver.toml")
	fileData := filepath.Join(root, "from-file")
	if err := os.WriteFile(cfgPath, []byte("data_dir = \""+fileData+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	// Before the first start there is no directory, and the command
	// creates none: it says which configuration it read.
	if code := run(context.Background(), []string{"-config", cfgPath, "domain", "add", "a.example"},
		strings.NewReader(""), &out, &errb); code != 1 || !strings.Contains(errb.String(), "configuration "+cfgPath+" read, and no directory exists at "+fileData) {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(fileData); !os.IsNotExist(err) {
		t.Fatalf("a refused command created %s: %v", fileData, err)
	}
	if err := os.Mkdir(fileData, 0o700); err != nil {
		t.Fatal(err)
	}
	openDir(t, fileData) // as the server's first start makes it
	errb.Reset()
	if code := run(context.Background(), []string{"-config", cfgPath, "domain", "add", "a.example"},
		strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(fileData, "mailagent.db")); err != nil {
		t.Fatalf("database not in the file's data_dir: %v", err)
	}
	flagData := filepath.Join(root, "from-flag")
	fails(t, flagData, "", 1, "no directory exists at "+flagData, "-config", cfgPath, "domain", "add", "b.example")
	if err := os.Mkdir(flagData, 0o700); err != nil {
		t.Fatal(err)
	}
	ok(t, flagData, "", "-config", cfgPath, "domain", "add", "b.example")
	if got := ok(t, flagData, "", "-config", cfgPath, "domain", "list"); got != "b.example\n" {
		t.Fatalf("domain list with -data = %q", got)
	}
	// DATA/fullserver.toml is read without -config; a bad one is an error.
	if err := os.WriteFile(filepath.Join(flagData, "fullserver.toml"), []byte("bogus_key = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, flagData, "", 1, "unknown key bogus_key", "domain", "list")
}

// TestAdminMySQL runs the commands against MariaDB/MySQL named in a
// configuration file, as an installation moving from the seed does.
func TestAdminMySQL(t *testing.T) {
	dsn, db := tempMySQLDB(t, "mailagent_cmd_")
	testAdminSQL(t, "mysql", dsn, db)
}

// TestAdminPostgres runs the same commands against PostgreSQL.
func TestAdminPostgres(t *testing.T) {
	_, dsn := interop.TempPostgres(t, interop.PostgresDSN(t), "mailagent_cmd_")
	testAdminSQL(t, "postgres", dsn, interop.OpenPostgres(t, dsn))
}

// testAdminSQL runs the commands with a configuration naming driver and
// dsn, and reads what they wrote through db.
func testAdminSQL(t *testing.T, driver, dsn string, db *sql.DB) {
	dir := storeDir(t, driver, dsn)
	if out := ok(t, dir, "", "migrate"); !strings.HasSuffix(out, "done: the schema is at version "+strconv.Itoa(store.SchemaVersion)+"\n") {
		t.Fatalf("migrate printed %q", out)
	}
	ok(t, dir, "", "domain", "add", "example.org")
	ok(t, dir, "pw\n", "user", "add", "-force", "alice@example.org")
	ok(t, dir, "", "alias", "add", "info@example.org", "alice@example.org")
	if got := ok(t, dir, "", "user", "list"); got != "alice@example.org\texample.org/alice/Maildir\n" {
		t.Fatalf("user list = %q", got)
	}
	var hash string
	if err := db.QueryRow("SELECT password FROM users WHERE email = 'alice@example.org'").Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if good, _, err := auth.VerifyPassword(hash, "pw"); !good || err != nil {
		t.Fatalf("hash in %s %q: %v", driver, hash, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "mailagent.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("SQLite file made although the configuration names %s: %v", driver, err)
	}
}

// tempMySQLDB is tempMySQL with a handle on the database, closed when
// the test ends.
func tempMySQLDB(t *testing.T, prefix string) (string, *sql.DB) {
	t.Helper()
	dsn := tempMySQL(t, prefix)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return dsn, db
}

// tempMySQL creates a database named prefix plus a random suffix on the
// server MAILAGENT_MYSQL_DSN names, drops it when the test ends, and
// returns its DSN (see interop.MySQLDSN when there is none).
func tempMySQL(t *testing.T, prefix string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(interop.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	rootCfg := cfg.Clone()
	rootCfg.DBName = ""
	root, err := sql.Open("mysql", rootCfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	if _, err := root.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Exec("DROP DATABASE " + name) })
	cfg.DBName = name
	return cfg.FormatDSN()
}

package main

import (
	"context"
	"crypto/tls"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/examples/fullserver/config"
	"github.com/mailagent/mailagent/internal/interop"
	"github.com/mailagent/mailagent/store"
)

// seedTables are the seed's CREATE TABLE statements as MySQL takes
// them, and as PostgreSQL does without the UNIQUE KEY name.
func seedTables(driver string) []string {
	if driver == "mysql" {
		return qaSeedTables
	}
	tables := append([]string(nil), qaSeedTables...)
	tables[3] = strings.Replace(tables[3], "UNIQUE KEY domain (domain)", "UNIQUE (domain)", 1)
	return tables
}

// storeDir returns a new data directory whose fullserver.toml names the
// directory driver and dsn.
func storeDir(t *testing.T, driver, dsn string) string {
	t.Helper()
	dir := t.TempDir()
	body := "[store]\ndriver = " + strconv.Quote(driver) + "\ndsn = " + strconv.Quote(dsn) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "fullserver.toml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMigrateMySQL and TestMigratePostgres run the server's directory
// as the seed's mail_admin user (SELECT, INSERT, UPDATE, DELETE): with
// the seed's tables, the server and the commands refuse to start in one
// line naming "fullserver migrate"; migrate as that user fails; migrate
// -n with the owner's DSN prints the steps and changes nothing; migrate
// prints the steps and runs them; a second migrate has nothing to do;
// then mail_admin runs the commands.
func TestMigrateMySQL(t *testing.T) {
	root, db := tempMySQLDB(t, "mailagent_migrate_")
	testMigrate(t, "mysql", root, db)
}

func TestMigratePostgres(t *testing.T) {
	_, root := interop.TempPostgres(t, interop.PostgresDSN(t), "mailagent_migrate_")
	testMigrate(t, "postgres", root, interop.OpenPostgres(t, root))
}

func testMigrate(t *testing.T, driver, root string, db *sql.DB) {
	for _, q := range append(seedTables(driver),
		"INSERT INTO domains (domain) VALUES ('example.org')",
		"INSERT INTO users (email, password) VALUES ('olduser@example.org', 'ab01FAX.bQRSU')") {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	limited, grant := interop.LimitedUser(t, driver, root, db)
	grant()
	dir := storeDir(t, driver, limited)
	version := func() int {
		var v sql.NullInt64
		if err := db.QueryRow("SELECT MAX(version) FROM mailagent_schema").Scan(&v); err != nil {
			return -1 // no table yet
		}
		return int(v.Int64)
	}

	want := `fullserver: store: the directory's schema is at version 0, this program needs ` + strconv.Itoa(store.SchemaVersion) +
		`: run "fullserver migrate -dsn DSN" with this configuration and the DSN of a database user that may CREATE and ALTER tables` + "\n"
	for _, args := range [][]string{{"serve"}, {"domain", "list"}} {
		code, out, errs := fs(t, dir, "", args...)
		if args[0] != "serve" {
			want = strings.Replace(want, "store: ", "", 1)
		}
		if code != 1 || out != "" || errs != want {
			t.Errorf("%s with the schema behind: exit %d, stdout %q, stderr %q; want %q", args, code, out, errs, want)
		}
	}

	code, out, errs := fs(t, dir, "", "migrate")
	if code != 1 || !strings.Contains(out, "step 2: ") || !strings.Contains(errs, "may not change the schema") ||
		!strings.Contains(errs, "give -dsn") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("migrate as mail_admin: exit %d, stdout %q, stderr %q; want the plan and one line of error", code, out, errs)
	}
	if v := version(); v > 0 {
		t.Fatalf("mail_admin migrated to %d", v)
	}

	plan := ok(t, dir, "", "migrate", "-n", "-dsn", root)
	for _, s := range []string{"directory: " + driver + ", schema version 0, this program's " + strconv.Itoa(store.SchemaVersion),
		"step 1: ", "step 2: ", "    ALTER TABLE users ", "step 4: "} {
		if !strings.Contains(plan, s) {
			t.Errorf("migrate -n printed %q, missing %q", plan, s)
		}
	}
	if strings.Contains(plan, "done") || version() > 0 {
		t.Fatalf("migrate -n migrated: %q", plan)
	}

	out = ok(t, dir, "", "migrate", "-dsn", root)
	if !strings.HasPrefix(out, plan) || strings.TrimPrefix(out, plan) != "done: the schema is at version "+strconv.Itoa(store.SchemaVersion)+"\n" {
		t.Fatalf("migrate printed %q; want the plan %q, then done", out, plan)
	}
	again := ok(t, dir, "", "migrate", "-dsn", root)
	if !strings.HasSuffix(again, "nothing to do: the schema is at version "+strconv.Itoa(store.SchemaVersion)+"\n") || strings.Contains(again, "step") {
		t.Fatalf("second migrate printed %q", again)
	}

	grant() // PostgreSQL: the tables the migration made
	ok(t, dir, "pw\n", "user", "add", "-force", "new@example.org")
	ok(t, dir, "", "user", "disable", "olduser@example.org")
	if got := ok(t, dir, "", "user", "list"); !strings.Contains(got, "new@example.org\t") || !strings.Contains(got, "olduser@example.org\t") {
		t.Fatalf("user list as mail_admin = %q", got)
	}
	var disabled int
	if err := db.QueryRow("SELECT disabled FROM users WHERE email = 'olduser@example.org'").Scan(&disabled); err != nil || disabled != 1 {
		t.Fatalf("disabled = %d, %v", disabled, err)
	}
}

// TestMigrateMyISAM migrates the seed's tables made as MyISAM: migrate
// refuses, naming -convert-myisam, and changes nothing; with it, the
// tables are InnoDB and at the current version.
func TestMigrateMyISAM(t *testing.T) {
	root, db := tempMySQLDB(t, "mailagent_myisam_")
	for _, q := range append(append([]string(nil), qaSeedTables...), "INSERT INTO users (email, password) VALUES ('olduser@example.org', 'x')") {
		if strings.HasPrefix(q, "CREATE") {
			q += " ENGINE=MyISAM"
		}
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	dir := storeDir(t, "mysql", root)
	engines := func() string {
		var e string
		if err := db.QueryRow("SELECT GROUP_CONCAT(DISTINCT engine) FROM information_schema.tables WHERE table_schema = DATABASE()" +
			" AND table_name IN ('domains', 'forwardings', 'users', 'transport')").Scan(&e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	code, out, errs := fs(t, dir, "", "migrate")
	if code != 1 || !strings.Contains(out, "MyISAM tables: domains, forwardings, transport, users") ||
		!strings.Contains(errs, "-convert-myisam") || engines() != "MyISAM" {
		t.Fatalf("migrate of MyISAM tables: exit %d, stdout %q, stderr %q, engines %s", code, out, errs, engines())
	}
	out = ok(t, dir, "", "migrate", "-convert-myisam")
	if !strings.Contains(out, "    ALTER TABLE users ENGINE=InnoDB\n") || !strings.HasSuffix(out, "done: the schema is at version "+strconv.Itoa(store.SchemaVersion)+"\n") {
		t.Fatalf("migrate -convert-myisam printed %q", out)
	}
	if e := engines(); e != "InnoDB" {
		t.Fatalf("engines after -convert-myisam: %s", e)
	}
	if got := ok(t, dir, "", "user", "list"); got != "olduser@example.org\texample.org/olduser/Maildir\n" {
		t.Fatalf("user list = %q", got)
	}
}

// TestMigrateSQLite: SQLite migrates itself when opened; migrate on a
// data directory without a directory database says so and creates
// nothing, and on one the server made has nothing to do.
func TestMigrateSQLite(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := fs(t, dir, "", "migrate")
	if code != 1 || out != "" || !strings.Contains(errs, "no SQLite directory at "+filepath.Join(dir, "mailagent.db")) {
		t.Fatalf("migrate without a directory: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "mailagent.db")); !os.IsNotExist(err) {
		t.Fatalf("migrate created the database: %v", err)
	}
	st, err := store.Open(context.Background(), store.DriverSQLite, filepath.Join(dir, "mailagent.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if got := ok(t, dir, "", "migrate"); got != "directory: sqlite, schema version "+strconv.Itoa(store.SchemaVersion)+", this program's "+
		strconv.Itoa(store.SchemaVersion)+"\nnothing to do: the schema is at version "+strconv.Itoa(store.SchemaVersion)+"\n" {
		t.Fatalf("migrate of a current SQLite directory printed %q", got)
	}
}

// TestServeAsMailAdmin starts the whole server on a MySQL and a
// PostgreSQL directory as a user with the seed's mail_admin grants only,
// after migrate ran as the owner: logins over submission, IMAP and POP3
// and a delivery over the MX work, and the MX's recipient check reads
// the directory.
func TestServeAsMailAdmin(t *testing.T) {
	t.Run("mysql", func(t *testing.T) {
		root, db := tempMySQLDB(t, "mailagent_serve_")
		serveAsMailAdmin(t, "mysql", root, db)
	})
	t.Run("postgres", func(t *testing.T) {
		_, root := interop.TempPostgres(t, interop.PostgresDSN(t), "mailagent_serve_")
		serveAsMailAdmin(t, "postgres", root, interop.OpenPostgres(t, root))
	})
}

func serveAsMailAdmin(t *testing.T, driver, root string, db *sql.DB) {
	if code, out, errs := fs(t, storeDir(t, driver, root), "", "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d: %s%s", code, out, errs)
	}
	limited, grant := interop.LimitedUser(t, driver, root, db)
	grant()
	s, addrs := startAll(t, func(c *config.Config) { c.Store.Driver, c.Store.DSN = driver, limited })
	tc := &tls.Config{InsecureSkipVerify: true}
	for _, proto := range []string{"smtp", "imap", "pop3"} {
		w, err := dialWire(addrs[implicitTLS[proto]], "127.0.0.1", tc, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		r, err := w.login(proto, "u@h.test", "pw-of-u")
		w.conn.Close()
		if err != nil || !loginSucceeded(proto, r) {
			t.Errorf("%s login as a mail_admin-served user: %q, %v", proto, r, err)
		}
	}
	w, err := dialWire(addrs["mx"], "127.0.0.1", nil, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.conn.Close()
	w.smtpReply()
	for _, step := range []struct{ cmd, want string }{
		{"EHLO client.test", "250"},
		{"MAIL FROM:<a@remote.test>", "250"},
		{"RCPT TO:<nobody@h.test>", "550"},
		{"RCPT TO:<U@h.test>", "250"},
		{"DATA", "354"},
		{"Subject: hi\r\n\r\nhello\r\n.", "250"},
	} {
		if r, err := w.cmd("smtp", step.cmd); err != nil || !strings.HasPrefix(r, step.want) {
			t.Fatalf("MX %q: %q, %v; want %s", step.cmd, r, err, step.want)
		}
	}
	files, err := filepath.Glob(filepath.Join(s.cfg.DataDir, "mail", "h.test", "u", "Maildir", "new", "*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("delivered files: %v, %v", files, err)
	}
	if b, err := os.ReadFile(files[0]); err != nil || !strings.Contains(string(b), "Subject: hi") {
		t.Fatalf("delivered message: %q, %v", b, err)
	}
}

package interop

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// LimitedUser creates a database user with the seed's mail_admin grants
// (SELECT, INSERT, UPDATE, DELETE, nothing else) on the test database
// of dsn, through root, a handle with the rights to do so on that
// database; the user is dropped when the test ends. It returns a DSN
// that logs in as that user. driver is "mysql" (dsn in go-sql-driver
// form) or "postgres" (a URL or key=value DSN whose search_path names
// the test's schema). On PostgreSQL the grant covers the tables that exist when
// grant is called, as GRANT … ON ALL TABLES does: call it again after a
// migration made tables; on MySQL the grant is on the whole database
// and grant does nothing.
func LimitedUser(t testing.TB, driver, dsn string, root *sql.DB) (limited string, grant func()) {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "mail_admin_" + hex.EncodeToString(b)
	const password = "guessmypassword"
	exec := func(q string) {
		t.Helper()
		if _, err := root.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	switch driver {
	case "mysql":
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		// The connection comes from 127.0.0.1, which the server names
		// localhost or not depending on its name resolution.
		for _, host := range []string{"localhost", "127.0.0.1"} {
			user := "'" + name + "'@'" + host + "'"
			exec("CREATE USER " + user + " IDENTIFIED BY '" + password + "'")
			t.Cleanup(func() { root.Exec("DROP USER " + user) })
			exec("GRANT SELECT, INSERT, UPDATE, DELETE ON `" + cfg.DBName + "`.* TO " + user)
		}
		cfg.User, cfg.Passwd = name, password
		return cfg.FormatDSN(), func() {}
	case "postgres":
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		schema := cfg.RuntimeParams["search_path"]
		exec("CREATE ROLE " + name + " LOGIN PASSWORD '" + password + "'")
		t.Cleanup(func() {
			root.Exec("DROP OWNED BY " + name)
			root.Exec("DROP ROLE " + name)
		})
		exec("GRANT USAGE ON SCHEMA " + schema + " TO " + name)
		limited = dsn + " user=" + name + " password=" + password
		if strings.Contains(dsn, "://") {
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			u.User = url.UserPassword(name, password)
			limited = u.String()
		}
		return limited, func() {
			exec("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + schema + " TO " + name)
		}
	}
	t.Fatalf("no database users on %s", driver)
	return "", nil
}

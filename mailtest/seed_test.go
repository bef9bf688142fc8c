package mailtest

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/mailagent/mailagent/internal/interop"
)

// seedSchema is the seed installation's SQL, statement for statement.
var seedSchema = []string{
	"CREATE TABLE domains (domain varchar(50) NOT NULL, PRIMARY KEY (domain) )",
	"CREATE TABLE forwardings (source varchar(80) NOT NULL, destination TEXT NOT NULL, PRIMARY KEY (source) )",
	"CREATE TABLE users (email varchar(80) NOT NULL, password varchar(20) NOT NULL, PRIMARY KEY (email) )",
	"CREATE TABLE transport ( domain varchar(128) NOT NULL default '', transport varchar(128) NOT NULL default '', UNIQUE KEY domain (domain) )",
}

// seedDatabase creates a fresh MariaDB database holding the seed's tables
// and returns its DSN; it is dropped by t.Cleanup.
func seedDatabase(t *testing.T) (string, *sql.DB) {
	dsn := interop.MySQLDSN(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	cfg.DBName = fmt.Sprintf("mailtest_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + cfg.DBName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE " + cfg.DBName) })
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, stmt := range seedSchema {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	return cfg.FormatDSN(), db
}

// A user of the seed installation logs in over IMAP with the password
// MySQL's ENCRYPT() hashed, and the hash is upgraded on the way.
func TestSeedUserLogsInOverIMAP(t *testing.T) {
	dsn, db := seedDatabase(t)
	if _, err := db.Exec("INSERT INTO domains (domain) VALUES ('a.test')"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO users (email, password) VALUES ('demons@a.test', ENCRYPT('guessmypassword'))"); err != nil {
		t.Fatal(err)
	}
	s := NewServer(t, WithDomain("a.test"), WithStore("mysql", dsn))
	if err := s.SendMX("x@elsewhere.test", []string{"demons@a.test"}, "Subject: welcome back\n\nhi\n"); err != nil {
		t.Fatal(err)
	}
	c := s.DialIMAP("demons@a.test", "guessmypassword")
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("SELECT: %+v, %v", sel, err)
	}
	var hash string
	if err := db.QueryRow("SELECT password FROM users WHERE email = 'demons@a.test'").Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hash, "argon2id") {
		t.Fatalf("hash not upgraded after login: %q", hash)
	}
}

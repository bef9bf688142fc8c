package store

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// The seed installation's CREATE TABLE statements, exactly as its
// administrators ran them in MySQL.
var seedMySQL = []string{
	"CREATE TABLE domains (domain varchar(50) NOT NULL, PRIMARY KEY (domain) );",
	"CREATE TABLE forwardings (source varchar(80) NOT NULL, destination TEXT NOT NULL, PRIMARY KEY (source) );",
	"CREATE TABLE users (email varchar(80) NOT NULL, password varchar(20) NOT NULL, PRIMARY KEY (email) );",
	"CREATE TABLE transport ( domain varchar(128) NOT NULL default '', transport varchar(128) NOT NULL default '', UNIQUE KEY domain (domain) );",
}

// The same tables as SQLite and PostgreSQL accept them (they have no
// UNIQUE KEY name syntax), for a database someone made by hand before
// mailagent.
var seedSQLite = []string{
	"CREATE TABLE domains (domain varchar(50) NOT NULL, PRIMARY KEY (domain) );",
	"CREATE TABLE forwardings (source varchar(80) NOT NULL, destination TEXT NOT NULL, PRIMARY KEY (source) );",
	"CREATE TABLE users (email varchar(80) NOT NULL, password varchar(20) NOT NULL, PRIMARY KEY (email) );",
	"CREATE TABLE transport ( domain varchar(128) NOT NULL default '', transport varchar(128) NOT NULL default '', UNIQUE (domain) );",
}

// seedSchema returns the seed's tables as driver takes them.
func seedSchema(driver string) []string {
	if driver == DriverMySQL {
		return seedMySQL
	}
	return seedSQLite
}

// TestSeedDatabase creates the seed's tables and rows the way its
// administrators did (plain INSERTs, ENCRYPT() for passwords on MySQL),
// then opens the database with the store: it must migrate and keep
// every row's meaning.
func TestSeedDatabase(t *testing.T) {
	for _, d := range dialects(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			driver, dsn, raw := d.open(t)
			schema := seedSchema(driver)
			desHash := "ab01FAX.bQRSU" // crypt("secret", "ab"), as ENCRYPT stores it
			for _, q := range schema {
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			rows := []string{
				"INSERT INTO domains (domain) VALUES ('mail.viviansj520.cn')",
				"INSERT INTO domains (domain) VALUES ('xn--bcher-kva.example')",
				"INSERT INTO users (email, password) VALUES ('demons@mail.viviansj520.cn', '" + desHash + "')",
				"INSERT INTO users (email, password) VALUES ('Info@xn--bcher-kva.example', 'x')",
				"INSERT INTO forwardings (source, destination) VALUES ('all@mail.viviansj520.cn', 'demons@mail.viviansj520.cn, info@xn--bcher-kva.example,friend@remote.example')",
				"INSERT INTO forwardings (source, destination) VALUES ('@xn--bcher-kva.example', 'info@xn--bcher-kva.example')",
				"INSERT INTO transport (domain, transport) VALUES ('relay.example', 'smtp:[192.0.2.1]:587')",
			}
			if driver == DriverMySQL {
				rows = append(rows, "INSERT INTO users (email, password) VALUES ('crypt@mail.viviansj520.cn', ENCRYPT('secret'))")
			}
			for _, q := range rows {
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}

			s, err := Open(ctx, driver, dsn, migrating(nil))
			if err != nil {
				t.Fatalf("Open seed database: %v", err)
			}
			defer s.Close()
			if v, err := s.SchemaVersion(ctx); err != nil || v != SchemaVersion {
				t.Fatalf("SchemaVersion = %d, %v", v, err)
			}

			u, err := s.LookupUser(ctx, "DEMONS@mail.viviansj520.cn")
			if err != nil {
				t.Fatal(err)
			}
			if u.PasswordHash != desHash || u.Disabled || u.Maildir != "mail.viviansj520.cn/demons/Maildir" ||
				u.QuotaBytes != 0 || !u.Created.IsZero() {
				t.Fatalf("seed user = %+v", u)
			}
			if driver == DriverMySQL {
				c, err := s.LookupUser(ctx, "crypt@mail.viviansj520.cn")
				if err != nil {
					t.Fatal(err)
				}
				if len(c.PasswordHash) != 13 {
					t.Fatalf("ENCRYPT() hash = %q, want a 13-character DES crypt", c.PasswordHash)
				}
			}

			// Hand-written A-label rows are found by U-label queries.
			if ok, err := s.IsLocalDomain(ctx, "bücher.example"); !ok || err != nil {
				t.Fatalf("IsLocalDomain(bücher.example) = %v, %v", ok, err)
			}
			r, err := s.Resolve(ctx, "all@mail.viviansj520.cn")
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Local) != 2 || r.Local[0].Address != "demons@mail.viviansj520.cn" ||
				r.Local[1].Address != "Info@bücher.example" || r.Local[1].Maildir != "bücher.example/info/Maildir" ||
				len(r.Remote) != 1 || r.Remote[0] != "friend@remote.example" {
				t.Fatalf("Resolve(all@) = %+v", r)
			}
			r, err = s.Resolve(ctx, "whoever@bücher.example")
			if err != nil || len(r.Local) != 1 || r.Local[0].Address != "Info@bücher.example" {
				t.Fatalf("catch-all: %+v, %v", r, err)
			}
			if tr, err := s.Transport(ctx, "RELAY.example"); err != nil || tr != "smtp:[192.0.2.1]:587" {
				t.Fatalf("Transport = %q, %v", tr, err)
			}

			// The widened password column holds a modern hash.
			long := "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=4$" + strings.Repeat("c2FsdA", 4) + "$" + strings.Repeat("aGFzaA", 8)
			if err := s.SetPassword(ctx, "demons@mail.viviansj520.cn", long); err != nil {
				t.Fatal(err)
			}
			var stored string
			if err := raw.QueryRow("SELECT password FROM users WHERE email = 'demons@mail.viviansj520.cn'").Scan(&stored); err != nil || stored != long {
				t.Fatalf("stored password = %q, %v", stored, err)
			}
			// The seed's own lookup queries still answer as before.
			var mbox string
			if driver == DriverMySQL {
				err = raw.QueryRow("SELECT CONCAT(SUBSTRING_INDEX(email,'@',-1),'/',SUBSTRING_INDEX(email,'@',1),'/') FROM users WHERE email='demons@mail.viviansj520.cn'").Scan(&mbox)
				if err != nil || mbox != "mail.viviansj520.cn/demons/" {
					t.Fatalf("seed virtual_mailbox_maps query = %q, %v", mbox, err)
				}
			}
			s.Close()

			// Reopening is a no-op, and the migrated schema is what a
			// server opening without Migrate accepts.
			s2, err := Open(ctx, driver, dsn, migrating(nil))
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			s2.Close()
			s2, err = Open(ctx, driver, dsn, nil)
			if err != nil {
				t.Fatalf("open without Migrate after the migration: %v", err)
			}
			s2.Close()
			if driver == DriverMySQL {
				// MySQL commits each ALTER on its own: a crash after
				// the steps ran but before they were recorded must not
				// stop the next Open, nor change the data.
				if _, err := raw.Exec("DELETE FROM mailagent_schema WHERE version >= 2"); err != nil {
					t.Fatal(err)
				}
				s3, err := Open(ctx, driver, dsn, migrating(nil))
				if err != nil {
					t.Fatalf("Open after unrecorded steps: %v", err)
				}
				u, err := s3.LookupUser(ctx, "demons@mail.viviansj520.cn")
				s3.Close()
				if err != nil || u.PasswordHash != long {
					t.Fatalf("after re-running steps: %+v, %v", u, err)
				}
			}
			if _, err := raw.Exec("INSERT INTO mailagent_schema (version, applied) VALUES (99, 0)"); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(ctx, driver, dsn, migrating(nil)); err == nil || !strings.Contains(err.Error(), "newer") {
				t.Fatalf("Open of a newer schema: %v, want refusal", err)
			}
		})
	}
}

// TestMySQLUTF8 checks that after migration a latin1 seed database holds
// SMTPUTF8 addresses.
func TestMySQLUTF8(t *testing.T) {
	if os.Getenv("MAILAGENT_MYSQL_DSN") == "" {
		t.Skip("MAILAGENT_MYSQL_DSN not set")
	}
	ds := dialects(t)
	d := ds[len(ds)-1]
	ctx := context.Background()
	driver, dsn, raw := d.open(t)
	for _, q := range seedMySQL {
		q = strings.Replace(q, ");", ") DEFAULT CHARSET=latin1;", 1)
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.Exec("INSERT INTO domains (domain) VALUES ('example.org')"); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, driver, dsn, migrating(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must(t, s.AddUser(ctx, &User{Address: "Jörg@example.org", PasswordHash: "h"}))
	u, err := s.LookupUser(ctx, "jörg@example.org")
	if err != nil || u.Address != "Jörg@example.org" {
		t.Fatalf("LookupUser = %+v, %v", u, err)
	}
	if err := s.AddUser(ctx, &User{Address: "JÖRG@example.org", PasswordHash: "h"}); !errors.Is(err, ErrExists) {
		t.Fatalf("case variant added: %v", err)
	}
}

package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/mailagent/mailagent/internal/interop"
)

// dialect is one database the suite runs against.
type dialect struct {
	name string
	// open returns a fresh, empty database: its driver and DSN, plus a
	// handle on which raw SQL (the seed's) can be run before Open.
	open func(t testing.TB) (driver, dsn string, raw *sql.DB)
}

// dialects returns SQLite always, MariaDB/MySQL when
// MAILAGENT_MYSQL_DSN is set and PostgreSQL when MAILAGENT_POSTGRES_DSN
// is set. Each MySQL test gets a database of its own, each PostgreSQL
// test a schema of its own, dropped at the end.
func dialects(t testing.TB) []dialect {
	ds := []dialect{{name: "sqlite", open: func(t testing.TB) (string, string, *sql.DB) {
		path := filepath.Join(t.TempDir(), "mailagent.db")
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		return DriverSQLite, path, raw
	}}}
	if base := os.Getenv("MAILAGENT_POSTGRES_DSN"); base != "" {
		ds = append(ds, dialect{name: "postgres", open: func(t testing.TB) (string, string, *sql.DB) {
			return openTestPostgres(t, base)
		}})
	}
	base := os.Getenv("MAILAGENT_MYSQL_DSN")
	if base == "" {
		return ds
	}
	return append(ds, dialect{name: "mysql", open: func(t testing.TB) (string, string, *sql.DB) {
		cfg, err := mysql.ParseDSN(base)
		if err != nil {
			t.Fatalf("MAILAGENT_MYSQL_DSN: %v", err)
		}
		b := make([]byte, 6)
		rand.Read(b)
		name := "mailagent_test_" + hex.EncodeToString(b)
		admin := cfg.Clone()
		admin.DBName = ""
		root, err := sql.Open("mysql", admin.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := root.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatalf("create database: %v", err)
		}
		t.Cleanup(func() {
			root.Exec("DROP DATABASE " + name)
			root.Close()
		})
		cfg.DBName = name
		raw, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		return DriverMySQL, cfg.FormatDSN(), raw
	}})
}

// openTestPostgres creates a schema of its own in the database of base
// and returns a DSN whose search_path is that schema, and a raw handle
// on it that takes "?" placeholders as the store's statements do.
func openTestPostgres(t testing.TB, base string) (string, string, *sql.DB) {
	_, dsn := interop.TempPostgres(t, base, "mailagent_test_")
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	// Tests change the schema under the raw handle: no statement cache.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	raw := sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg)})
	t.Cleanup(func() { raw.Close() })
	return DriverPostgres, dsn, raw
}

// migrating returns opts with Migrate set: the tests' directories are
// made by Open, as an administrator's migration would make them.
func migrating(opts *Options) *Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Migrate = true
	return &o
}

// forEachDialect runs f as a subtest per dialect with a fresh database.
func forEachDialect(t *testing.T, opts *Options, f func(t *testing.T, s *SQL)) {
	for _, d := range dialects(t) {
		t.Run(d.name, func(t *testing.T) {
			s, _ := d.store(t, opts)
			f(t, s)
		})
	}
}

// store opens a directory on a fresh database of d, closed when the
// test ends, and returns it with the raw handle on its database.
func (d dialect) store(t testing.TB, opts *Options) (*SQL, *sql.DB) {
	t.Helper()
	driver, dsn, raw := d.open(t)
	s, err := Open(context.Background(), driver, dsn, migrating(opts))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, raw
}

func TestOpenFresh(t *testing.T) {
	forEachDialect(t, nil, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != SchemaVersion {
			t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, SchemaVersion)
		}
		if s.Driver() == DriverSQLite {
			var mode string
			if err := s.r.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
			}
			if _, err := s.r.ExecContext(ctx, "DELETE FROM domains"); err == nil {
				t.Fatal("read pool accepted a write")
			}
		}
		if err := s.AddDomain(ctx, "Example.ORG"); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUser(ctx, &User{Address: "Alice@example.org", PasswordHash: "{X}y"}); err != nil {
			t.Fatal(err)
		}
		u, err := s.LookupUser(ctx, "alice@EXAMPLE.org")
		if err != nil {
			t.Fatal(err)
		}
		if u.Address != "Alice@example.org" || u.Maildir != "example.org/alice/Maildir" || u.PasswordHash != "{X}y" {
			t.Fatalf("user = %+v", u)
		}
		r, err := s.Resolve(ctx, "alice+tag@example.org")
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Local) != 1 || r.Local[0].Address != "Alice@example.org" {
			t.Fatalf("resolution = %+v", r)
		}
	})
}

// TestOpenConcurrent opens one fresh database from several goroutines at
// once, as a server and an admin command may: the migrations must run
// once and every Open succeed.
func TestOpenConcurrent(t *testing.T) {
	for _, d := range dialects(t) {
		t.Run(d.name, func(t *testing.T) {
			driver, dsn, _ := d.open(t)
			errs := make(chan error, 4)
			for range 4 {
				go func() {
					s, err := Open(context.Background(), driver, dsn, migrating(nil))
					if err == nil {
						err = s.AddDomain(context.Background(), "example.org")
						if errors.Is(err, ErrExists) {
							err = nil
						}
						s.Close()
					}
					errs <- err
				}()
			}
			for range 4 {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestConcurrentUse runs lookups and writes side by side (for -race),
// with the cache on, and checks every lookup sees a consistent user.
func TestConcurrentUse(t *testing.T) {
	forEachDialect(t, &Options{CacheTTL: time.Minute}, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		must(t, s.AddDomain(ctx, "example.org"))
		must(t, s.AddUser(ctx, &User{Address: "a@example.org", PasswordHash: "h"}))
		done := make(chan error, 3)
		for range 2 {
			go func() {
				for range 200 {
					if _, err := s.Resolve(ctx, "a+x@example.org"); err != nil && !errors.Is(err, ErrDisabled) {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
		go func() {
			for i := range 50 {
				if err := s.SetDisabled(ctx, "a@example.org", i%2 == 0); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		for range 3 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if u, err := s.LookupUser(ctx, "a@example.org"); err != nil || u.Disabled {
			t.Fatalf("final state: %+v, %v", u, err)
		}
	})
}

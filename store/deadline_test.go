package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// lockUsers takes, on a connection of its own to the database raw
// reaches, a lock on the users table: LOCK TABLES on MySQL and
// PostgreSQL, which keeps every other client from reading or writing
// it; on SQLite, whose readers in WAL mode never wait, a write
// transaction, which keeps other writers waiting. It returns the
// function that releases it.
func lockUsers(t *testing.T, driver string, raw *sql.DB) func() {
	t.Helper()
	ctx := context.Background()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stmts []string
	unlock := "ROLLBACK"
	switch driver {
	case DriverMySQL:
		stmts, unlock = []string{"LOCK TABLES users WRITE"}, "UNLOCK TABLES"
	case DriverPostgres:
		stmts = []string{"BEGIN", "LOCK TABLE users IN ACCESS EXCLUSIVE MODE"}
	default:
		stmts = []string{"BEGIN IMMEDIATE", "UPDATE users SET quota_bytes = quota_bytes"}
	}
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	released := false
	release := func() {
		if !released {
			released = true
			conn.ExecContext(ctx, unlock)
			conn.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// With the users table locked by another client, every lookup and write
// that waits for it fails within QueryTimeout with ErrUnavailable (never
// ErrNotFound, which servers answer with a permanent refusal), however
// long the driver would wait (SQLite's busy timeout is 30 s here), and
// works again once the lock is gone.
func TestQueryTimeoutLockedTable(t *testing.T) {
	const timeout = 500 * time.Millisecond
	for _, d := range dialects(t) {
		t.Run(d.name, func(t *testing.T) {
			driver, dsn, raw := d.open(t)
			ctx := context.Background()
			s, err := Open(ctx, driver, dsn, migrating(&Options{QueryTimeout: timeout, BusyTimeout: 30 * time.Second}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.AddDomain(ctx, "example.org"); err != nil {
				t.Fatal(err)
			}
			if err := s.AddUser(ctx, &User{Address: "alice@example.org", PasswordHash: "{X}y"}); err != nil {
				t.Fatal(err)
			}
			release := lockUsers(t, driver, raw)
			check := func(name string, err error, took time.Duration) {
				t.Helper()
				if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
					t.Errorf("%s on a locked table: %v; want ErrUnavailable", name, err)
				}
				if took > timeout+2*time.Second {
					t.Errorf("%s took %v on a locked table, want about %v", name, took, timeout)
				}
			}
			start := time.Now()
			err = s.SetPassword(ctx, "alice@example.org", "{X}z")
			check("SetPassword", err, time.Since(start))
			for name, lookup := range map[string]func() error{
				"LookupUser": func() error { _, err := s.LookupUser(ctx, "alice@example.org"); return err },
				"Resolve":    func() error { _, err := s.Resolve(ctx, "alice@example.org"); return err },
			} {
				start := time.Now()
				err := lookup()
				if driver == DriverSQLite {
					// WAL readers do not wait for the writer.
					if err != nil {
						t.Errorf("%s while another connection writes: %v", name, err)
					}
					continue
				}
				check(name, err, time.Since(start))
			}
			release()
			if u, err := s.LookupUser(ctx, "alice@example.org"); err != nil || u.PasswordHash != "{X}y" {
				t.Fatalf("LookupUser after the lock: %+v, %v", u, err)
			}
		})
	}
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

const benchUsers = 100_000

// BenchmarkDirectory measures the hot path with 100,000 users, on SQLite
// and, when MAILAGENT_MYSQL_DSN or MAILAGENT_POSTGRES_DSN is set, on
// MySQL and PostgreSQL. Baseline is a raw
// prepared "SELECT password FROM users WHERE email = ?" through
// database/sql on the same database: the floor any directory on this
// driver pays. Parallel variants use every GOMAXPROCS core, as a server
// does. Alias addresses have no users row, so their baseline finds none.
//
//	go test -run='^$' -bench=Directory -benchtime=2s ./store
func BenchmarkDirectory(b *testing.B) {
	for _, d := range dialects(b) {
		b.Run(d.name, func(b *testing.B) {
			driver, dsn, raw := d.open(b)
			benchDirectory(b, driver, dsn, raw)
		})
	}
}

func benchDirectory(b *testing.B, driver, dsn string, raw *sql.DB) {
	ctx := context.Background()
	s, err := Open(ctx, driver, dsn, migrating(nil))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.AddDomain(ctx, "example.org"); err != nil {
		b.Fatal(err)
	}
	// Rows go in 500 at a time: one statement per row would take
	// minutes over a MySQL connection.
	insert := func(table string, n int, row func(i int) (string, string)) {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Rollback()
		const batch = 500
		for i := 0; i < n; i += batch {
			q := "INSERT INTO " + table + " VALUES " + strings.Repeat("(?, ?),", batch-1) + "(?, ?)"
			if table == "users" {
				q = "INSERT INTO users (email, password) VALUES " + strings.Repeat("(?, ?),", batch-1) + "(?, ?)"
			}
			args := make([]any, 0, 2*batch)
			for j := i; j < i+batch; j++ {
				k, v := row(j)
				args = append(args, k, v)
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	insert("users", benchUsers, func(i int) (string, string) {
		return fmt.Sprintf("user%d@example.org", i), "{ARGON2ID}x"
	})
	insert("forwardings", 1000, func(i int) (string, string) {
		return fmt.Sprintf("alias%d@example.org", i), fmt.Sprintf("user%d@example.org,user%d@example.org", i, i+1)
	})
	cached, err := Open(ctx, driver, dsn, migrating(&Options{CacheTTL: time.Minute}))
	if err != nil {
		b.Fatal(err)
	}
	defer cached.Close()
	raw.SetMaxIdleConns(8)
	pk, err := raw.PrepareContext(ctx, "SELECT password FROM users WHERE email = ?")
	if err != nil {
		b.Fatal(err)
	}
	defer pk.Close()

	// Addresses are drawn at random from all users (a cold cache), or
	// from 1,000 of them for the cached runs (a hot working set).
	all := func(r *rand.Rand) string { return fmt.Sprintf("user%d@example.org", r.IntN(benchUsers)) }
	hot := func(r *rand.Rand) string { return fmt.Sprintf("user%d@example.org", r.IntN(1000)) }
	base := func(a string) error {
		var p string
		return pk.QueryRowContext(ctx, a).Scan(&p)
	}
	// Each operation runs interleaved with the baseline on the same
	// address, so load from other processes hits both alike; the
	// x-baseline metric is the ratio of their total times. The parallel
	// variant gives the throughput on all cores (1e9 / ns/op per second).
	run := func(name string, pick func(*rand.Rand) string, op func(string) error) {
		b.Run(name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			var tBase, tOp time.Duration
			first := false
			for b.Loop() {
				// Alternate which runs first: the second finds the
				// same pages hot in the CPU caches.
				a := pick(r)
				first = !first
				for i := range 2 {
					t0 := time.Now()
					if (i == 0) == first {
						if err := base(strings.ToLower(a)); err != nil && !errors.Is(err, sql.ErrNoRows) {
							b.Fatal(err)
						}
						tBase += time.Since(t0)
					} else {
						if err := op(a); err != nil {
							b.Fatal(err)
						}
						tOp += time.Since(t0)
					}
				}
			}
			b.ReportMetric(float64(tOp)/float64(tBase), "x-baseline")
			b.ReportMetric(float64(tOp.Nanoseconds())/float64(b.N), "op-ns")
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), 2))
				for pb.Next() {
					if err := op(pick(r)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	run("Baseline", all, base)
	run("LookupUser", all, func(a string) error { _, err := s.LookupUser(ctx, a); return err })
	run("Resolve", all, func(a string) error { _, err := s.Resolve(ctx, a); return err })
	run("ResolveAlias", func(r *rand.Rand) string { return fmt.Sprintf("alias%d@example.org", r.IntN(1000)) },
		func(a string) error { _, err := s.Resolve(ctx, a); return err })
	run("LookupUserCached", hot, func(a string) error { _, err := cached.LookupUser(ctx, a); return err })
	run("ResolveCached", hot, func(a string) error { _, err := cached.Resolve(ctx, a); return err })
}

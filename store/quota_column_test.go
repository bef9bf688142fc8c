package store

import (
	"context"
	"strings"
	"testing"
)

// TestSeedQuotaColumn migrates the common variant of the seed's tutorial
// whose users table has a quota column in bytes: the limits become
// quota_bytes, shown in the plan, and a limit already in quota_bytes is
// kept. SQLite is left out: its step 2 rebuilds the users table, and a
// seed database on SQLite has no such column to keep.
func TestSeedQuotaColumn(t *testing.T) {
	for _, d := range dialects(t) {
		if d.name == "sqlite" {
			continue
		}
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			driver, dsn, raw := d.open(t)
			users := "CREATE TABLE users (email varchar(80) NOT NULL, password varchar(20) NOT NULL, quota bigint NOT NULL DEFAULT 0, PRIMARY KEY (email) )"
			for _, q := range append([]string{users}, seedSchema(driver)...) {
				if strings.Contains(q, "TABLE users") && q != users {
					continue
				}
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			for _, q := range []string{
				"INSERT INTO domains (domain) VALUES ('example.org')",
				"INSERT INTO users (email, password, quota) VALUES ('ten@example.org', 'x', 10485760)",
				"INSERT INTO users (email, password, quota) VALUES ('none@example.org', 'x', 0)",
			} {
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			plan, err := PlanMigration(ctx, driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			var last MigrationStep
			for _, st := range plan.Steps {
				if st.Version == 5 {
					last = st
				}
			}
			if last.Version != 5 || len(last.Statements) != 1 || last.Statements[0] != seedQuotaCopy {
				t.Fatalf("step 5 = %+v, want a step 5 copying the quota column", last)
			}
			s, err := Open(ctx, driver, dsn, migrating(nil))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for addr, want := range map[string]int64{"ten@example.org": 10485760, "none@example.org": 0} {
				u, err := s.LookupUser(ctx, addr)
				if err != nil || u.QuotaBytes != want {
					t.Fatalf("LookupUser(%s) = %+v, %v; want quota %d", addr, u, err, want)
				}
			}
			// The seed's column is left as it was.
			var q int64
			if err := raw.QueryRow("SELECT quota FROM users WHERE email = 'ten@example.org'").Scan(&q); err != nil || q != 10485760 {
				t.Fatalf("users.quota = %d, %v", q, err)
			}
		})
	}
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/interop"
)

// TestLeastPrivilege runs a directory on MySQL and PostgreSQL as the
// seed's mail_admin user, who may only read and write rows: Open
// refuses a schema that is behind with ErrSchemaBehind and changes
// nothing, a migration as that user fails, one as the database's owner
// succeeds, after which the limited user serves lookups and admin
// writes; a second migration changes nothing.
func TestLeastPrivilege(t *testing.T) {
	for _, d := range dialects(t) {
		if d.name == "sqlite" {
			continue
		}
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			driver, dsn, raw := d.open(t)
			schema := seedSchema(driver)
			for _, q := range append(schema,
				"INSERT INTO domains (domain) VALUES ('example.org')",
				"INSERT INTO users (email, password) VALUES ('olduser@example.org', 'ab01FAX.bQRSU')",
				"INSERT INTO forwardings (source, destination) VALUES ('all@example.org', 'olduser@example.org')") {
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			limited, grant := interop.LimitedUser(t, driver, dsn, raw)
			grant()
			before := snapshotSeed(t, raw)

			_, err := Open(ctx, driver, limited, nil)
			var se *SchemaError
			if !errors.Is(err, ErrSchemaBehind) || !errors.As(err, &se) || se.Have != 0 || se.Want != SchemaVersion {
				t.Fatalf("Open of the seed database without Migrate: %v; want a SchemaError from 0", err)
			}
			if _, err := Open(ctx, driver, limited, migrating(nil)); !errors.Is(err, ErrSchemaRights) {
				t.Fatalf("migration as the limited user: %v; want ErrSchemaRights", err)
			}
			plan, err := PlanMigration(ctx, driver, limited)
			if err != nil {
				t.Fatal(err)
			}
			var versions []int
			for _, st := range plan.Steps {
				versions = append(versions, st.Version)
				if len(st.Statements) == 0 && st.Version != 4 {
					t.Errorf("step %d has no statements", st.Version)
				}
			}
			want := []int{1, 2, 3, 4, 6, 7}
			if driver == DriverPostgres {
				want = []int{1, 2, 4, 6, 7} // step 3 is MySQL's character set
			}
			if plan.From != 0 || plan.To != SchemaVersion || !slices.Equal(versions, want) {
				t.Fatalf("plan = %+v, steps %v; want %v", plan, versions, want)
			}
			if after := snapshotSeed(t, raw); !slices.Equal(before, after) {
				t.Fatalf("refused opens changed the database:\n%q\n%q", before, after)
			}

			owner, err := Open(ctx, driver, dsn, migrating(nil))
			if err != nil {
				t.Fatalf("migration as the owner: %v", err)
			}
			owner.Close()
			grant() // the tables PostgreSQL made since the first grant

			s, err := Open(ctx, driver, limited, nil)
			if err != nil {
				t.Fatalf("Open as mail_admin after the migration: %v", err)
			}
			defer s.Close()
			if r, err := s.Resolve(ctx, "ALL@example.org"); err != nil || len(r.Local) != 1 || r.Local[0].Address != "olduser@example.org" {
				t.Fatalf("Resolve = %+v, %v", r, err)
			}
			must(t, s.AddUser(ctx, &User{Address: "new@example.org", PasswordHash: "{X}1"}))
			must(t, s.SetPassword(ctx, "OLDUSER@example.org", "{X}2"))
			must(t, s.SetTransport(ctx, "relay.example", "smtp:[192.0.2.1]:587"))
			must(t, s.RemoveForwarding(ctx, "all@example.org"))
			got := map[string]string{}
			rows, err := raw.Query("SELECT email, password FROM users")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var e, p string
				if err := rows.Scan(&e, &p); err != nil {
					t.Fatal(err)
				}
				got[e] = p
			}
			rows.Close()
			if len(got) != 2 || got["olduser@example.org"] != "{X}2" || got["new@example.org"] != "{X}1" {
				t.Fatalf("users rows = %v", got)
			}

			// Idempotent: nothing pending, and a second migration
			// changes no row.
			if plan, err := PlanMigration(ctx, driver, limited); err != nil || len(plan.Steps) != 0 || plan.From != SchemaVersion {
				t.Fatalf("plan after the migration = %+v, %v", plan, err)
			}
			before = snapshotSeed(t, raw)
			again, err := Open(ctx, driver, dsn, migrating(nil))
			if err != nil {
				t.Fatal(err)
			}
			again.Close()
			if after := snapshotSeed(t, raw); !slices.Equal(before, after) {
				t.Fatalf("second migration changed the database:\n%q\n%q", before, after)
			}
		})
	}
}

// snapshotSeed returns every row of the seed's four tables and the
// version table when there is one, as sorted lines.
func snapshotSeed(t *testing.T, raw *sql.DB) []string {
	t.Helper()
	var out []string
	for _, table := range []string{"domains", "forwardings", "users", "transport", versionTable} {
		rows, err := raw.Query("SELECT * FROM " + table)
		if err != nil {
			if table == versionTable {
				continue
			}
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			dst := make([]any, len(cols))
			for i := range vals {
				dst[i] = &vals[i]
			}
			if err := rows.Scan(dst...); err != nil {
				t.Fatal(err)
			}
			line := table
			for i, v := range vals {
				line += " " + cols[i] + "=" + v.String
			}
			out = append(out, line)
		}
		rows.Close()
	}
	slices.Sort(out)
	return out
}

// TestMyISAM migrates the seed's tables created as MyISAM, as a common
// variant of the seed's tutorial does: the migration is refused, naming
// the tables, until asked to convert them, and then keeps every row.
func TestMyISAM(t *testing.T) {
	var d dialect
	for _, x := range dialects(t) {
		if x.name == "mysql" {
			d = x
		}
	}
	if d.open == nil {
		t.Skip("MAILAGENT_MYSQL_DSN not set")
	}
	ctx := context.Background()
	driver, dsn, raw := d.open(t)
	for _, q := range append(slices.Clone(seedMySQL),
		"INSERT INTO domains (domain) VALUES ('example.org')",
		"INSERT INTO users (email, password) VALUES ('olduser@example.org', 'ab01FAX.bQRSU')") {
		q = strings.Replace(q, ");", ") ENGINE=MyISAM;", 1)
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	engines := func() string {
		var e string
		if err := raw.QueryRow("SELECT GROUP_CONCAT(DISTINCT engine) FROM information_schema.tables WHERE table_schema = DATABASE()" +
			" AND table_name IN ('domains', 'forwardings', 'users', 'transport')").Scan(&e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	if e := engines(); e != "MyISAM" {
		t.Fatalf("engines = %q", e)
	}
	plan, err := PlanMigration(ctx, driver, dsn)
	if err != nil || !slices.Equal(plan.MyISAM, []string{"domains", "forwardings", "transport", "users"}) {
		t.Fatalf("plan = %+v, %v", plan, err)
	}
	before := snapshotSeed(t, raw)
	_, err = Open(ctx, driver, dsn, migrating(nil))
	if !errors.Is(err, ErrMyISAM) || !strings.Contains(err.Error(), "domains, forwardings, transport, users") {
		t.Fatalf("migration of MyISAM tables: %v; want ErrMyISAM naming them", err)
	}
	if after := snapshotSeed(t, raw); !slices.Equal(before, after) || engines() != "MyISAM" {
		t.Fatalf("refused migration changed the database: %q", after)
	}
	s, err := Open(ctx, driver, dsn, &Options{Migrate: true, ConvertMyISAM: true})
	if err != nil {
		t.Fatalf("migration converting MyISAM: %v", err)
	}
	defer s.Close()
	if e := engines(); e != "InnoDB" {
		t.Fatalf("engines after conversion = %q", e)
	}
	if u, err := s.LookupUser(ctx, "OldUser@example.org"); err != nil || u.PasswordHash != "ab01FAX.bQRSU" {
		t.Fatalf("LookupUser = %+v, %v", u, err)
	}
	must(t, s.AddUser(ctx, &User{Address: "jörg@example.org", PasswordHash: "h"}))
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
)

// writeSetup fills a directory for TestWritesByKey. "accented" has only
// accented keys ("josé", "bücher"); "both" has their unaccented twins
// too, which on MySQL needs key columns in an accent-sensitive
// collation: with the seed's utf8mb4_general_ci the twins are one key.
var writeSetups = []string{"accented", "both"}

func fillWriteSetup(t *testing.T, s *SQL, setup string) {
	ctx := context.Background()
	must(t, s.AddDomain(ctx, "example.org"))
	must(t, s.AddDomain(ctx, "bücher.example"))
	must(t, s.AddDomain(ctx, "über.example"))
	must(t, s.AddUser(ctx, &User{Address: "josé@example.org", PasswordHash: "h-josé"}))
	must(t, s.AddUser(ctx, &User{Address: "alice@example.org", PasswordHash: "h-alice"}))
	must(t, s.AddUser(ctx, &User{Address: "a@bücher.example", PasswordHash: "h-a"}))
	must(t, s.AddForwarding(ctx, "équipe@example.org", []string{"alice@example.org"}))
	must(t, s.AddForwarding(ctx, "@über.example", []string{"alice@example.org"}))
	must(t, s.SetTransport(ctx, "bücher.example", "lmtp:127.0.0.1:24"))
	if setup == "both" {
		must(t, s.AddDomain(ctx, "bucher.example"))
		must(t, s.AddDomain(ctx, "uber.example"))
		must(t, s.AddUser(ctx, &User{Address: "jose@example.org", PasswordHash: "h-jose"}))
		must(t, s.AddForwarding(ctx, "equipe@example.org", []string{"alice@example.org"}))
		must(t, s.AddForwarding(ctx, "@uber.example", []string{"alice@example.org"}))
		must(t, s.SetTransport(ctx, "bucher.example", "lmtp:127.0.0.1:25"))
	}
}

// snapshotRows reads every row of the four tables straight from the
// database, keyed "table key" with the row's other columns as value.
func snapshotRows(t *testing.T, raw *sql.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, q := range []struct{ name, query string }{
		{"user", "SELECT email, CONCAT_WS('|', password, disabled, quota_bytes, quota_messages, display_email) FROM users"},
		{"fwd", "SELECT source, destination FROM forwardings"},
		{"domain", "SELECT domain, '' FROM domains"},
		{"transport", "SELECT domain, transport FROM transport"},
	} {
		rows, err := raw.Query(q.query)
		if err != nil {
			t.Fatalf("%s: %v", q.query, err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			out[q.name+" "+k] = v
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

// changedRows lists the keys whose row differs between before and
// after, or is in one only.
func changedRows(before, after map[string]string) []string {
	var out []string
	for k, v := range before {
		if w, ok := after[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// accentSensitive changes the key columns of a MySQL directory to a
// case-insensitive, accent-sensitive collation, as an administrator
// may, so that "jose" and "josé" can both be stored. It reports false
// when the server has none.
func accentSensitive(t *testing.T, raw *sql.DB) bool {
	for _, coll := range []string{"utf8mb4_uca1400_as_ci", "utf8mb4_0900_as_ci"} {
		_, err := raw.Exec("ALTER TABLE users MODIFY email varchar(255) NOT NULL COLLATE " + coll)
		if err != nil {
			continue
		}
		for _, q := range []string{
			"ALTER TABLE domains MODIFY domain varchar(255) NOT NULL COLLATE " + coll,
			"ALTER TABLE forwardings MODIFY source varchar(255) NOT NULL COLLATE " + coll,
			"ALTER TABLE transport MODIFY domain varchar(255) NOT NULL DEFAULT '' COLLATE " + coll,
		} {
			if _, err := raw.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		return true
	}
	return false
}

// TestWritesByKey checks that a write by address or domain changes only
// the rows a lookup of it finds: keys equal under Unicode simple case
// folding, never keys that differ in accents, which MySQL's
// utf8mb4_general_ci equates. Each case runs on a directory holding
// only the accented keys ("josé", "bücher") and on one holding their
// unaccented twins as well; what changed is read from the tables.
func TestWritesByKey(t *testing.T) {
	type expect struct {
		err     error // nil, ErrNotFound, ErrNotEmpty or ErrExists
		changed []string
	}
	type testCase struct {
		name string
		op   func(ctx context.Context, s *SQL) error
		// want is keyed by setup; "accented/mysql", when present,
		// replaces "accented" on MySQL.
		want map[string]expect
	}
	notFound := expect{err: ErrNotFound}
	var cases []testCase
	userOps := []struct {
		name string
		f    func(ctx context.Context, s *SQL, a string) error
	}{
		{"SetPassword", func(ctx context.Context, s *SQL, a string) error { return s.SetPassword(ctx, a, "new") }},
		{"SetDisabled", func(ctx context.Context, s *SQL, a string) error { return s.SetDisabled(ctx, a, true) }},
		{"SetQuota", func(ctx context.Context, s *SQL, a string) error { return s.SetQuota(ctx, a, 7, 8) }},
		{"RemoveUser", func(ctx context.Context, s *SQL, a string) error { return s.RemoveUser(ctx, a) }},
	}
	for _, op := range userOps {
		for _, c := range []struct {
			addr           string
			accented, both expect
		}{
			{"jose@example.org", notFound, expect{changed: []string{"user jose@example.org"}}},
			{"JOSE@example.org", notFound, expect{changed: []string{"user jose@example.org"}}},
			{"JOSÉ@example.org", expect{changed: []string{"user josé@example.org"}}, expect{changed: []string{"user josé@example.org"}}},
			{"josé@example.org", expect{changed: []string{"user josé@example.org"}}, expect{changed: []string{"user josé@example.org"}}},
			{"josè@example.org", notFound, notFound},
			{"a@bucher.example", notFound, notFound},
		} {
			cases = append(cases, testCase{
				name: op.name + "/" + c.addr,
				op:   func(ctx context.Context, s *SQL) error { return op.f(ctx, s, c.addr) },
				want: map[string]expect{"accented": c.accented, "both": c.both},
			})
		}
	}
	for _, c := range []struct {
		source         string
		accented, both expect
	}{
		{"equipe@example.org", notFound, expect{changed: []string{"fwd equipe@example.org"}}},
		{"ÉQUIPE@example.org", expect{changed: []string{"fwd équipe@example.org"}}, expect{changed: []string{"fwd équipe@example.org"}}},
		{"@uber.example", notFound, expect{changed: []string{"fwd @uber.example"}}},
		{"@ÜBER.example", expect{changed: []string{"fwd @über.example"}}, expect{changed: []string{"fwd @über.example"}}},
	} {
		cases = append(cases, testCase{
			name: "RemoveForwarding/" + c.source,
			op:   func(ctx context.Context, s *SQL) error { return s.RemoveForwarding(ctx, c.source) },
			want: map[string]expect{"accented": c.accented, "both": c.both},
		})
	}
	for _, c := range []struct {
		domain         string
		accented, both expect
	}{
		// bücher.example has a user: that must not make the removal of
		// bucher.example fail as "not empty".
		{"bucher.example", notFound, expect{changed: []string{"domain bucher.example"}}},
		{"BÜCHER.example", expect{err: ErrNotEmpty}, expect{err: ErrNotEmpty}},
		{"uber.example", notFound, expect{err: ErrNotEmpty}},
	} {
		cases = append(cases, testCase{
			name: "RemoveDomain/" + c.domain,
			op:   func(ctx context.Context, s *SQL) error { return s.RemoveDomain(ctx, c.domain) },
			want: map[string]expect{"accented": c.accented, "both": c.both},
		})
	}
	cases = append(cases,
		testCase{
			name: "RemoveTransport/bucher.example",
			op:   func(ctx context.Context, s *SQL) error { return s.RemoveTransport(ctx, "bucher.example") },
			want: map[string]expect{"accented": notFound, "both": {changed: []string{"transport bucher.example"}}},
		},
		testCase{
			name: "RemoveTransport/xn--bcher-kva.example",
			op:   func(ctx context.Context, s *SQL) error { return s.RemoveTransport(ctx, "xn--bcher-kva.example") },
			want: map[string]expect{
				"accented": {changed: []string{"transport bücher.example"}},
				"both":     {changed: []string{"transport bücher.example"}},
			},
		},
		testCase{
			name: "SetTransport/bucher.example",
			op: func(ctx context.Context, s *SQL) error {
				return s.SetTransport(ctx, "bucher.example", "smtp:[relay.example]")
			},
			want: map[string]expect{
				// SQLite stores the new domain beside bücher.example;
				// utf8mb4_general_ci makes them one key.
				"accented":       {changed: []string{"transport bucher.example"}},
				"accented/mysql": {err: ErrExists},
				"both":           {changed: []string{"transport bucher.example"}},
			},
		},
		testCase{
			name: "SetTransport/BÜCHER.example",
			op: func(ctx context.Context, s *SQL) error {
				return s.SetTransport(ctx, "BÜCHER.example", "smtp:[relay.example]")
			},
			want: map[string]expect{
				"accented": {changed: []string{"transport bücher.example"}},
				"both":     {changed: []string{"transport bücher.example"}},
			},
		},
	)

	for _, d := range dialects(t) {
		for _, setup := range writeSetups {
			t.Run(d.name+"/"+setup, func(t *testing.T) {
				ctx := context.Background()
				s, raw := d.store(t, nil)
				driver := s.Driver()
				if driver == DriverMySQL && setup == "both" && !accentSensitive(t, raw) {
					t.Skip("the server has no accent-sensitive, case-insensitive utf8mb4 collation")
				}
				for _, c := range cases {
					t.Run(c.name, func(t *testing.T) {
						for _, table := range []string{"users", "forwardings", "domains", "transport"} {
							if _, err := raw.Exec("DELETE FROM " + table); err != nil {
								t.Fatal(err)
							}
						}
						fillWriteSetup(t, s, setup)
						want := c.want[setup]
						if w, ok := c.want[setup+"/mysql"]; ok && driver == DriverMySQL {
							want = w
						}
						before := snapshotRows(t, raw)
						err := c.op(ctx, s)
						switch {
						case want.err == nil && err != nil:
							t.Fatalf("error %v", err)
						case want.err != nil && !errors.Is(err, want.err):
							t.Fatalf("error %v, want %v", err, want.err)
						}
						if got := changedRows(before, snapshotRows(t, raw)); !slices.Equal(got, want.changed) {
							t.Errorf("changed rows %q, want %q", got, want.changed)
						}
					})
				}
			})
		}
	}
}

// TestWritesByKeyLookups checks through the API, on the seed's MySQL
// collation and on SQLite, that a write by an unaccented address leaves
// the accented user as it was.
func TestWritesByKeyLookups(t *testing.T) {
	forEachDialect(t, nil, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		fillWriteSetup(t, s, "accented")
		for _, f := range []func() error{
			func() error { return s.SetPassword(ctx, "jose@example.org", "new") },
			func() error { return s.SetDisabled(ctx, "jose@example.org", true) },
			func() error { return s.SetQuota(ctx, "jose@example.org", 1, 1) },
			func() error { return s.RemoveUser(ctx, "jose@example.org") },
		} {
			if err := f(); !errors.Is(err, ErrNotFound) {
				t.Errorf("write of jose@example.org: %v, want ErrNotFound", err)
			}
		}
		u, err := s.LookupUser(ctx, "josé@example.org")
		if err != nil || fmt.Sprintf("%s %v %d %d", u.PasswordHash, u.Disabled, u.QuotaBytes, u.QuotaMessages) != "h-josé false 0 0" {
			t.Fatalf("josé@example.org after writes of jose@example.org: %+v, %v", u, err)
		}
		if tr, err := s.Transport(ctx, "bücher.example"); err != nil || tr != "lmtp:127.0.0.1:24" {
			t.Fatalf("Transport(bücher.example) = %q, %v", tr, err)
		}
	})
}

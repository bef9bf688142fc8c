package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"
)

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1": "SELECT 1",
		"SELECT a FROM t WHERE b = ? AND c IN (?, ?)": "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)",
		"SELECT '?', \"?\", ? FROM t":                 "SELECT '?', \"?\", $1 FROM t",
		"SELECT 'it''s ?', ?":                         "SELECT 'it''s ?', $1",
		"SELECT E'\\'?', ?":                           "SELECT E'\\'?', $1",
		"SELECT e'a\\\\', ?":                          "SELECT e'a\\\\', $1",
		"SELECT 'a\\', ?":                             "SELECT 'a\\', $1",
		"SELECT ? -- why?\n, ?":                       "SELECT $1 -- why?\n, $2",
		"SELECT ? /* a /* b? */ c? */ , ?":            "SELECT $1 /* a /* b? */ c? */ , $2",
		"SELECT CONCAT_WS('\n', x) WHERE y = ?":       "SELECT CONCAT_WS('\n', x) WHERE y = $1",
		"SELECT 'unterminated ?":                      "SELECT 'unterminated ?",
	} {
		if got := rebind(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRebind checks that rebind changes nothing but placeholders: with
// each "$n" put back to "?", the query is unchanged, and the n count up
// from 1.
func FuzzRebind(f *testing.F) {
	for _, s := range []string{
		"SELECT a FROM t WHERE b = ? AND c IN (?, ?)",
		"SELECT '?', \"?\", E'\\'?', ? -- ?\n/* ? /* ? */ */ ?",
		"?", "'", "E'\\", "/*", "--?",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if strings.Contains(q, "$") {
			return
		}
		out := rebind(q)
		var b strings.Builder
		n := 0
		for i := 0; i < len(out); i++ {
			if out[i] != '$' {
				b.WriteByte(out[i])
				continue
			}
			n++
			num := strconv.Itoa(n)
			if !strings.HasPrefix(out[i+1:], num) {
				t.Fatalf("rebind(%q) = %q: placeholder %d missing at %d", q, out, n, i)
			}
			b.WriteByte('?')
			i += len(num)
		}
		if b.String() != q {
			t.Fatalf("rebind(%q) = %q changes more than placeholders", q, out)
		}
	})
}

// TestKeysNoCase checks what the schema itself enforces on every
// dialect: a row written by hand whose key differs from another's in
// ASCII case only is refused (SQLite's NOCASE keys, PostgreSQL's unique
// index on the lowered key, MySQL's _ci collation), and one differing in
// a non-ASCII letter's case is a row of its own except on MySQL.
func TestKeysNoCase(t *testing.T) {
	for _, d := range dialects(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			s, raw := d.store(t, nil)
			must(t, s.AddDomain(ctx, "example.org"))
			must(t, s.AddUser(ctx, &User{Address: "alice@example.org", PasswordHash: "h"}))
			must(t, s.AddUser(ctx, &User{Address: "josé@example.org", PasswordHash: "h"}))
			must(t, s.AddForwarding(ctx, "team@example.org", []string{"alice@example.org"}))
			for _, q := range []string{
				"INSERT INTO users (email, password) VALUES ('ALICE@example.org', 'x')",
				"INSERT INTO users (email, password) VALUES ('alice@EXAMPLE.ORG', 'x')",
				"INSERT INTO forwardings (source, destination) VALUES ('Team@example.org', 'x@example.org')",
				"INSERT INTO domains (domain) VALUES ('EXAMPLE.org')",
				"INSERT INTO transport (domain, transport) VALUES ('a.example', 'smtp:'), ('A.EXAMPLE', 'smtp:')",
			} {
				if _, err := raw.ExecContext(ctx, q); !isDuplicate(err) {
					t.Errorf("%s: %v, want a duplicate key error", q, err)
				}
			}
			_, err := raw.ExecContext(ctx, "INSERT INTO users (email, password) VALUES ('JOSÉ@example.org', 'x')")
			if (s.Driver() == DriverMySQL) != isDuplicate(err) {
				t.Errorf("insert of JOSÉ beside josé: %v", err)
			}
		})
	}
}

// TestPostgresIndexes checks that PostgreSQL answers the lookups from
// the unique indexes on the lowered keys, not by reading whole tables.
func TestPostgresIndexes(t *testing.T) {
	for _, d := range dialects(t) {
		if d.name != "postgres" {
			continue
		}
		ctx := context.Background()
		s, _ := d.store(t, nil)
		conn, err := s.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// The tables are empty: without this the planner rightly reads
		// them whole.
		if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		for _, k := range []stmtKey{
			{kind: stmtUser, n: [3]uint8{1}},
			{kind: stmtUser, n: [3]uint8{2}},
			{kind: stmtDomain, n: [3]uint8{1}},
			{kind: stmtForwarding, n: [3]uint8{1}},
			{kind: stmtTransport, n: [3]uint8{1}},
			{kind: stmtStep, n: [3]uint8{1, 1, 1}},
		} {
			q := s.query(k)
			args := make([]any, strings.Count(q, "?"))
			for i := range args {
				args[i] = "x@example.org"
			}
			plan := explain(t, conn, "EXPLAIN "+q, args)
			if strings.Contains(plan, "Seq Scan") || !strings.Contains(plan, "_nocase") {
				t.Errorf("plan of %s:\n%s", q, plan)
			}
		}
	}
}

func explain(t *testing.T, conn *sql.Conn, q string, args []any) string {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

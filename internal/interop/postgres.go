package interop

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgresDSN returns MAILAGENT_POSTGRES_DSN, the PostgreSQL server
// tests may create schemas and roles on, or ends the test with Require.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	return envDSN(t, "MAILAGENT_POSTGRES_DSN")
}

// TempPostgres creates a schema named prefix plus a random suffix in the
// database base names, drops it with everything in it
// when the test ends, and returns the schema's name and a DSN whose
// search_path is that schema: tests running at once on one database do
// not see each other's tables.
func TempPostgres(t testing.TB, base, prefix string) (schema, dsn string) {
	t.Helper()
	root := OpenPostgres(t, base)
	b := make([]byte, 6)
	rand.Read(b)
	schema = prefix + hex.EncodeToString(b)
	if _, err := root.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() { root.Exec("DROP SCHEMA " + schema + " CASCADE") })
	return schema, withPostgresParam(t, base, "search_path", schema)
}

// withPostgresParam returns dsn with its parameter key set to value: a
// query parameter of a URL, or one more key=value pair.
func withPostgresParam(t testing.TB, dsn, key, value string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " " + key + "=" + value
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("PostgreSQL DSN %q is not a URL: %v", dsn, err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenPostgres opens dsn with pgx's database/sql driver, closed when the
// test ends.
func OpenPostgres(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("PostgreSQL DSN: %v", err)
	}
	db := sql.OpenDB(stdlib.GetConnector(*cfg))
	t.Cleanup(func() { db.Close() })
	return db
}

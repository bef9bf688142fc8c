package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// openPostgres opens a PostgreSQL directory through pgx's database/sql
// driver. The store's statements are written with "?" placeholders, as
// SQLite and MySQL take them; the connections rewrite them to
// PostgreSQL's "$1" form (rebind), so every statement, including those
// run inside transactions, needs no second spelling.
func (s *SQL) openPostgres(dsn string) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("store: postgres dsn: %w", err)
	}
	s.pgcfg = cfg.Copy()
	db := sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg)})
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetMaxIdleConns(8)
	s.w, s.r = db, db
	return nil
}

// pgConnector hands out connections that rebind "?" placeholders.
type pgConnector struct{ driver.Connector }

// Connect implements driver.Connector.
func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return pgConn{conn.(*stdlib.Conn)}, nil
}

// pgConn is a pgx connection whose statements are rebound. The rest of
// pgx's driver interfaces (transactions, Ping, session reset, value
// checks) are its own, promoted.
type pgConn struct{ *stdlib.Conn }

func (c pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(rebind(query))
}

func (c pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(query))
}

func (c pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

func (c pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(query), args)
}

// rebind replaces each "?" placeholder of q with "$1", "$2"… in order.
// A "?" inside a string literal ('…', E'…' with backslash escapes), a
// quoted identifier ("…") or a comment (-- to the end of the line, /* */
// nested as PostgreSQL nests them) is left alone. Dollar-quoted strings
// are not recognised: the store writes none.
func rebind(q string) string {
	if strings.IndexByte(q, '?') < 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			i++
			continue
		case c == '\'' || c == '"':
			// E'…' strings take backslash escapes; others double the
			// quote to include it.
			esc := c == '\'' && i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && (i == 1 || !isIdentByte(q[i-2]))
			j := i + 1
			for j < len(q) {
				if esc && q[j] == '\\' {
					j += 2
					continue
				}
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			j = min(j+1, len(q))
			b.WriteString(q[i:j])
			i = j
			continue
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j
			continue
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			depth, j := 1, i+2
			for j < len(q) && depth > 0 {
				switch {
				case strings.HasPrefix(q[j:], "/*"):
					depth++
					j += 2
				case strings.HasPrefix(q[j:], "*/"):
					depth--
					j += 2
				default:
					j++
				}
			}
			b.WriteString(q[i:j])
			i = j
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 0x80 || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// Key comparisons. SQLite's key columns are COLLATE NOCASE: ASCII
// letters compare case-insensitively, everything else byte for byte,
// and the keys of non-ASCII addresses are stored case-folded
// (storedEmail). PostgreSQL compares text byte for byte (under a
// deterministic collation), so on PostgreSQL the keys are stored as on
// SQLite and compared through lower() under the "C" collation, which
// lowers ASCII letters only: NOCASE exactly, whatever the database's
// locale. A unique index on that expression keeps one row per key, as
// SQLite's NOCASE primary keys do, and answers the lookups. MySQL's
// collations do their own folding, so there a key is the column itself.

// ci returns the expression a key column col is compared through.
func (s *SQL) ci(col string) string {
	if s.driver == DriverPostgres {
		return `lower(` + col + ` COLLATE "C")`
	}
	return col
}

// ciArg is the placeholder of a key compared with ci.
func (s *SQL) ciArg() string {
	if s.driver == DriverPostgres {
		return `lower(?::text COLLATE "C")`
	}
	return "?"
}

// in returns the comparison of the key column col with n keys:
// "col = ?" for one, which SQLite answers with one index search and no
// temporary table, else "col IN (?, ?, …)".
func (s *SQL) in(col string, n uint8) string {
	if n == 1 {
		return s.ci(col) + " = " + s.ciArg()
	}
	return s.ci(col) + " IN (" + s.ciArg() + strings.Repeat(", "+s.ciArg(), int(n)-1) + ")"
}

// like returns the LIKE comparison of the key column col with a
// pattern, ASCII case-insensitive on every dialect as SQLite's LIKE is.
func (s *SQL) like(col string) string {
	return s.ci(col) + " LIKE " + s.ciArg()
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// migration is one schema step. Steps only add: new tables, new columns
// with defaults, wider columns. A database made by the seed's SQL is
// version 0 with the four tables present; step 1 then creates nothing
// and the later steps extend what is there, so every row keeps its
// meaning.
type migration struct {
	version int
	// summary says what the step does, for a migration plan.
	summary  string
	sqlite   []string
	mysql    []string
	postgres []string
	// foldedRows, when set, runs after the statements on the dialects
	// that store folded keys (SQLite and PostgreSQL, see ci), in the
	// same transaction, for changes to rows that need Go.
	foldedRows func(s *SQL, ctx context.Context, db execQueryer) error
	// when, if set, says whether the statements apply to this database
	// (a column the installation may or may not have); when it returns
	// false the step is only recorded.
	when func(s *SQL, ctx context.Context, db execQueryer) (bool, error)
}

// Step 1 is the seed's CREATE TABLE statements, verbatim apart from IF
// NOT EXISTS (and, for SQLite and PostgreSQL, the UNIQUE KEY name they
// do not parse).
var migrations = []migration{
	{
		version: 1,
		summary: "create the seed's tables domains, forwardings, users and transport where missing",
		mysql: []string{
			"CREATE TABLE IF NOT EXISTS domains (domain varchar(50) NOT NULL, PRIMARY KEY (domain) )",
			"CREATE TABLE IF NOT EXISTS forwardings (source varchar(80) NOT NULL, destination TEXT NOT NULL, PRIMARY KEY (source) )",
			"CREATE TABLE IF NOT EXISTS users (email varchar(80) NOT NULL, password varchar(20) NOT NULL, PRIMARY KEY (email) )",
			"CREATE TABLE IF NOT EXISTS transport ( domain varchar(128) NOT NULL default '', transport varchar(128) NOT NULL default '', UNIQUE KEY domain (domain) )",
		},
		sqlite: []string{
			"CREATE TABLE IF NOT EXISTS domains (domain varchar(50) NOT NULL, PRIMARY KEY (domain) )",
			"CREATE TABLE IF NOT EXISTS forwardings (source varchar(80) NOT NULL, destination TEXT NOT NULL, PRIMARY KEY (source) )",
			"CREATE TABLE IF NOT EXISTS users (email varchar(80) NOT NULL, password varchar(20) NOT NULL, PRIMARY KEY (email) )",
			"CREATE TABLE IF NOT EXISTS transport ( domain varchar(128) NOT NULL default '', transport varchar(128) NOT NULL default '', UNIQUE (domain) )",
		},
		postgres: []string{
			"CREATE TABLE IF NOT EXISTS domains (domain varchar(50) NOT NULL, PRIMARY KEY (domain) )",
			"CREATE TABLE IF NOT EXISTS forwardings (source varchar(80) NOT NULL, destination TEXT NOT NULL, PRIMARY KEY (source) )",
			"CREATE TABLE IF NOT EXISTS users (email varchar(80) NOT NULL, password varchar(20) NOT NULL, PRIMARY KEY (email) )",
			"CREATE TABLE IF NOT EXISTS transport ( domain varchar(128) NOT NULL default '', transport varchar(128) NOT NULL default '', UNIQUE (domain) )",
		},
	},
	{
		// What a mail server needs beyond the seed: a password column
		// wide enough for argon2id and SHA-crypt hashes (the seed's
		// varchar(20) holds only a DES crypt), the Maildir path ('' means
		// "<domain>/<local>/Maildir", the seed's Dovecot mail_location),
		// quota, a disabled flag and timestamps (Unix seconds, 0 when the
		// row was written by hand). Addresses grow to RFC 5321's 254
		// octets.
		version: 2,
		summary: "widen addresses to 255 characters and users.password for modern hashes; add users.maildir, quota_bytes, quota_messages, disabled, created, updated",
		mysql: []string{
			"ALTER TABLE users MODIFY email varchar(255) NOT NULL, MODIFY password varchar(255) NOT NULL," +
				" ADD COLUMN maildir varchar(1024) NOT NULL DEFAULT ''," +
				" ADD COLUMN quota_bytes BIGINT NOT NULL DEFAULT 0," +
				" ADD COLUMN quota_messages BIGINT NOT NULL DEFAULT 0," +
				" ADD COLUMN disabled TINYINT NOT NULL DEFAULT 0," +
				" ADD COLUMN created BIGINT NOT NULL DEFAULT 0," +
				" ADD COLUMN updated BIGINT NOT NULL DEFAULT 0",
			"ALTER TABLE forwardings MODIFY source varchar(255) NOT NULL",
			"ALTER TABLE domains MODIFY domain varchar(255) NOT NULL",
			"ALTER TABLE transport MODIFY domain varchar(255) NOT NULL DEFAULT ''",
		},
		// SQLite cannot change a column's collation, so its tables are
		// rebuilt: keys compare case-insensitively (NOCASE, as MySQL's
		// default collations do) and the keyed tables are clustered on
		// their key (WITHOUT ROWID), one B-tree search per lookup.
		sqlite: []string{
			"CREATE TABLE domains_v2 (domain TEXT NOT NULL COLLATE NOCASE PRIMARY KEY) WITHOUT ROWID",
			"INSERT INTO domains_v2 (domain) SELECT domain FROM domains",
			"DROP TABLE domains",
			"ALTER TABLE domains_v2 RENAME TO domains",
			"CREATE TABLE forwardings_v2 (source TEXT NOT NULL COLLATE NOCASE PRIMARY KEY, destination TEXT NOT NULL) WITHOUT ROWID",
			"INSERT INTO forwardings_v2 (source, destination) SELECT source, destination FROM forwardings",
			"DROP TABLE forwardings",
			"ALTER TABLE forwardings_v2 RENAME TO forwardings",
			"CREATE TABLE users_v2 (email TEXT NOT NULL COLLATE NOCASE PRIMARY KEY, password TEXT NOT NULL," +
				" maildir TEXT NOT NULL DEFAULT '', quota_bytes INTEGER NOT NULL DEFAULT 0," +
				" quota_messages INTEGER NOT NULL DEFAULT 0, disabled INTEGER NOT NULL DEFAULT 0," +
				" created INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
			"INSERT INTO users_v2 (email, password) SELECT email, password FROM users",
			"DROP TABLE users",
			"ALTER TABLE users_v2 RENAME TO users",
			"CREATE TABLE transport_v2 (domain TEXT NOT NULL DEFAULT '' COLLATE NOCASE PRIMARY KEY, transport TEXT NOT NULL DEFAULT '') WITHOUT ROWID",
			"INSERT INTO transport_v2 (domain, transport) SELECT domain, transport FROM transport",
			"DROP TABLE transport",
			"ALTER TABLE transport_v2 RENAME TO transport",
		},
		// PostgreSQL keeps the tables and adds, for each key, a unique
		// index on its ASCII-lowered form: the NOCASE keys of SQLite
		// (see ci), searched by every lookup.
		postgres: []string{
			"ALTER TABLE users ALTER COLUMN email TYPE varchar(255), ALTER COLUMN password TYPE varchar(255)," +
				" ADD COLUMN maildir varchar(1024) NOT NULL DEFAULT ''," +
				" ADD COLUMN quota_bytes BIGINT NOT NULL DEFAULT 0," +
				" ADD COLUMN quota_messages BIGINT NOT NULL DEFAULT 0," +
				" ADD COLUMN disabled SMALLINT NOT NULL DEFAULT 0," +
				" ADD COLUMN created BIGINT NOT NULL DEFAULT 0," +
				" ADD COLUMN updated BIGINT NOT NULL DEFAULT 0",
			"ALTER TABLE forwardings ALTER COLUMN source TYPE varchar(255)",
			"ALTER TABLE domains ALTER COLUMN domain TYPE varchar(255)",
			"ALTER TABLE transport ALTER COLUMN domain TYPE varchar(255)",
			`CREATE UNIQUE INDEX users_email_nocase ON users (lower(email COLLATE "C"))`,
			`CREATE UNIQUE INDEX forwardings_source_nocase ON forwardings (lower(source COLLATE "C"))`,
			`CREATE UNIQUE INDEX domains_domain_nocase ON domains (lower(domain COLLATE "C"))`,
			`CREATE UNIQUE INDEX transport_domain_nocase ON transport (lower(domain COLLATE "C"))`,
		},
	},
	{
		// The seed created its tables in the server's default character
		// set, often latin1, which cannot hold SMTPUTF8 local parts or
		// U-label domains. utf8mb4_general_ci keeps comparisons
		// case-insensitive, as they were.
		version: 3,
		summary: "convert the tables to utf8mb4 for SMTPUTF8 addresses (MySQL)",
		mysql: []string{
			"ALTER TABLE domains CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
			"ALTER TABLE forwardings CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
			"ALTER TABLE users CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
			"ALTER TABLE transport CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
		},
	},
	{
		// Unicode case-insensitive keys on SQLite, whose NOCASE folds
		// only ASCII letters: a key whose non-ASCII letters are not in
		// their case-folded form is stored folded, and a user's address
		// as typed is kept in display_email (see storedEmail). MySQL's
		// _ci collations already fold Unicode: its rows are kept as they
		// are, and the column is added for the same statements to work.
		// PostgreSQL stores keys as SQLite does.
		version:    4,
		summary:    "add users.display_email; store non-ASCII keys case-folded (SQLite, PostgreSQL)",
		mysql:      []string{"ALTER TABLE users ADD COLUMN display_email varchar(255) NOT NULL DEFAULT ''"},
		sqlite:     []string{"ALTER TABLE users ADD COLUMN display_email TEXT NOT NULL DEFAULT ''"},
		postgres:   []string{"ALTER TABLE users ADD COLUMN display_email varchar(255) NOT NULL DEFAULT ''"},
		foldedRows: (*SQL).foldKeys,
	},
	{
		// Many copies of the seed's tutorial add a quota column (bytes)
		// to users, which Dovecot's user query returned as its quota
		// rule. Its limits become quota_bytes, which this program reads;
		// a limit already set in quota_bytes is kept.
		version:  5,
		summary:  "copy the quota of an existing users.quota column (bytes) into quota_bytes",
		mysql:    []string{seedQuotaCopy},
		sqlite:   []string{seedQuotaCopy},
		postgres: []string{seedQuotaCopy},
		when: func(s *SQL, ctx context.Context, db execQueryer) (bool, error) {
			return s.hasColumn(ctx, db, "users", "quota")
		},
	},
	{
		// The backend a proxy sends a user's sessions and deliveries
		// to (Home): the user's own, else its domain's; empty means
		// the proxy's consistent-hash choice.
		version: 6,
		summary: "add users.host and domains.host, the backend that holds the mailboxes",
		mysql: []string{"ALTER TABLE users ADD COLUMN host varchar(255) NOT NULL DEFAULT ''",
			"ALTER TABLE domains ADD COLUMN host varchar(255) NOT NULL DEFAULT ''"},
		sqlite: []string{"ALTER TABLE users ADD COLUMN host TEXT NOT NULL DEFAULT ''",
			"ALTER TABLE domains ADD COLUMN host TEXT NOT NULL DEFAULT ''"},
		postgres: []string{"ALTER TABLE users ADD COLUMN host varchar(255) NOT NULL DEFAULT ''",
			"ALTER TABLE domains ADD COLUMN host varchar(255) NOT NULL DEFAULT ''"},
	},
	{
		// The change counter (see changes.go): one row whose serial
		// every write increments in its own transaction, which every
		// process sharing the directory polls to clear its cache. InnoDB
		// on MySQL whatever the other tables use: a row lock, and
		// Galera replicates InnoDB tables only.
		version: 7,
		summary: "add the table " + changeTable + ", the counter of directory changes that every node polls",
		mysql: []string{
			"CREATE TABLE IF NOT EXISTS " + changeTable + " (id INT NOT NULL PRIMARY KEY, serial BIGINT NOT NULL) ENGINE=InnoDB",
			"INSERT IGNORE INTO " + changeTable + " (id, serial) VALUES (1, 0)",
		},
		sqlite: []string{
			"CREATE TABLE IF NOT EXISTS " + changeTable + " (id INTEGER NOT NULL PRIMARY KEY, serial INTEGER NOT NULL)",
			"INSERT OR IGNORE INTO " + changeTable + " (id, serial) VALUES (1, 0)",
		},
		postgres: []string{
			"CREATE TABLE IF NOT EXISTS " + changeTable + " (id INTEGER NOT NULL PRIMARY KEY, serial BIGINT NOT NULL)",
			"INSERT INTO " + changeTable + " (id, serial) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
		},
	},
}

// seedQuotaCopy is step 5's statement: harmless when repeated.
const seedQuotaCopy = "UPDATE users SET quota_bytes = quota WHERE quota_bytes = 0 AND quota > 0"

// hasColumn reports whether table has column.
func (s *SQL) hasColumn(ctx context.Context, db execQueryer, table, column string) (bool, error) {
	var q string
	switch s.driver {
	case DriverMySQL:
		q = "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?"
	case DriverPostgres:
		q = "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?"
	default:
		q = "SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?"
	}
	var n int
	if err := db.QueryRowContext(ctx, q, table, column).Scan(&n); err != nil {
		return false, fmt.Errorf("store: columns of %s: %w", table, err)
	}
	return n > 0, nil
}

// SchemaVersion is the schema version this package migrates to.
const SchemaVersion = 7

// versionTable records applied migrations. It has a mailagent_ prefix
// because it may share a database with other applications' tables.
const versionTable = "mailagent_schema"

// SchemaVersion returns the version the database is at.
func (s *SQL) SchemaVersion(ctx context.Context) (int, error) {
	v, err := s.readVersion(ctx, s.w)
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// readVersion returns the highest version recorded in the version
// table, 0 when there is no such table yet (a seed database, or an
// empty one).
func (s *SQL) readVersion(ctx context.Context, db execQueryer) (int, error) {
	if s.driver != DriverSQLite {
		cur := "DATABASE()"
		if s.driver == DriverPostgres {
			cur = "current_schema()"
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "+cur+
			" AND table_name = '"+versionTable+"'").Scan(&n); err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, nil
		}
	}
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, "SELECT MAX(version) FROM "+versionTable).Scan(&v)
	if err != nil {
		return 0, err
	}
	return int(v.Int64), nil
}

// ErrSchemaBehind is matched by a *SchemaError: the database's schema
// is older than this program's and Open was not asked to migrate it.
var ErrSchemaBehind = errors.New("store: database schema is behind")

// SchemaError reports a MySQL or PostgreSQL directory whose schema is
// older than this program's, opened without Options.Migrate.
type SchemaError struct {
	// Have is the database's version (0: none recorded), Want
	// SchemaVersion.
	Have, Want int
}

// Error implements error.
func (e *SchemaError) Error() string {
	return fmt.Sprintf("store: the directory's schema is at version %d, this program needs %d", e.Have, e.Want)
}

// Is makes a *SchemaError match ErrSchemaBehind.
func (e *SchemaError) Is(target error) bool { return target == ErrSchemaBehind }

// ErrMyISAM is wrapped by the error of a MySQL migration refused
// because directory tables use the MyISAM engine (see
// Options.ConvertMyISAM).
var ErrMyISAM = errors.New("store: MyISAM tables")

// checkSchema refuses a schema that is not this program's version.
func (s *SQL) checkSchema(ctx context.Context) error {
	v, err := s.readVersion(ctx, s.w)
	if err != nil {
		return fmt.Errorf("store: schema version: %w", err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("store: database schema version %d is newer than this program's %d", v, SchemaVersion)
	}
	if v < SchemaVersion {
		return &SchemaError{Have: v, Want: SchemaVersion}
	}
	return nil
}

// MigrationPlan is what a migration would do to a database.
type MigrationPlan struct {
	// From is the database's schema version (0: none recorded), To
	// SchemaVersion.
	From, To int
	// Steps are the pending steps, in order.
	Steps []MigrationStep
	// MyISAM lists the directory tables on the MyISAM engine (MySQL).
	MyISAM []string
}

// MigrationStep is one pending schema step.
type MigrationStep struct {
	Version    int
	Summary    string
	Statements []string
}

// PlanMigration connects to the database and returns what Open with
// Options.Migrate would do to it, changing nothing. A database user
// with SELECT rights is enough.
func PlanMigration(ctx context.Context, driver, dsn string) (*MigrationPlan, error) {
	s, err := connect(ctx, driver, dsn, nil)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	v, err := s.readVersion(ctx, s.w)
	if err != nil {
		return nil, fmt.Errorf("store: schema version: %w", err)
	}
	p := &MigrationPlan{From: v, To: SchemaVersion}
	for _, m := range migrations {
		// A step with nothing to do on this dialect (MySQL's character
		// set on PostgreSQL) is only recorded: it is not shown.
		if m.version <= v {
			continue
		}
		stmts, err := s.applicable(ctx, s.w, m)
		if err != nil {
			return nil, err
		}
		rows := m.foldedRows != nil && driver != DriverMySQL
		if len(stmts) > 0 || rows {
			p.Steps = append(p.Steps, MigrationStep{Version: m.version, Summary: m.summary, Statements: stmts})
		}
	}
	if driver == DriverMySQL {
		if p.MyISAM, err = myISAMTables(ctx, s.w); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// myISAMTables returns the directory's tables that use the MyISAM
// engine, sorted.
func myISAMTables(ctx context.Context, db execQueryer) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"+
		" AND engine = 'MyISAM' AND table_name IN ('domains', 'forwardings', 'users', 'transport', '"+versionTable+"') ORDER BY table_name")
	if err != nil {
		return nil, fmt.Errorf("store: table engines: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("store: table engines: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// applicable returns the statements of m that apply to the database:
// those of its dialect, or none when m.when says so.
func (s *SQL) applicable(ctx context.Context, db execQueryer, m migration) ([]string, error) {
	if m.when != nil {
		ok, err := m.when(s, ctx, db)
		if err != nil || !ok {
			return nil, err
		}
	}
	return s.steps(m), nil
}

// steps returns the statements of m on the directory's dialect.
func (s *SQL) steps(m migration) []string {
	switch s.driver {
	case DriverMySQL:
		return m.mysql
	case DriverPostgres:
		return m.postgres
	}
	return m.sqlite
}

func (s *SQL) migrate(ctx context.Context) error {
	var err error
	switch s.driver {
	case DriverMySQL:
		err = s.migrateMySQL(ctx)
	case DriverPostgres:
		err = s.migratePostgres(ctx)
	default:
		err = s.migrateSQLite(ctx)
	}
	if isDenied(err) {
		err = fmt.Errorf("%w: %w", ErrSchemaRights, err)
	}
	return err
}

// ErrSchemaRights is wrapped by the error of a migration that the
// database refused for lack of privileges: the DSN's user may read and
// write rows (the seed's mail_admin grants) but not create or alter
// tables.
var ErrSchemaRights = errors.New("store: the database user may not change the schema")

// isDenied reports a MySQL or PostgreSQL refusal for lack of
// privileges.
func isDenied(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		// ER_DBACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR,
		// ER_COLUMNACCESS_DENIED_ERROR, ER_SPECIFIC_ACCESS_DENIED_ERROR.
		return me.Number == 1044 || me.Number == 1142 || me.Number == 1143 || me.Number == 1227
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501" // insufficient_privilege
}

// migrateSQLite runs all pending steps in one IMMEDIATE transaction:
// SQLite's DDL is transactional, so a crash leaves the old schema whole,
// and two processes opening the same file migrate one after the other.
func (s *SQL) migrateSQLite(ctx context.Context) error {
	return s.migrateInTx(ctx, "")
}

// migratePostgres does the same on PostgreSQL, whose DDL is
// transactional too, under a transaction-level advisory lock named
// after the schema, so two processes opening the same database migrate
// one after the other.
func (s *SQL) migratePostgres(ctx context.Context) error {
	return s.migrateInTx(ctx, "SELECT pg_advisory_xact_lock(hashtext('mailagent_migrate ' || current_schema()))")
}

// migrateInTx runs all pending steps in one transaction, after the
// statement lock when it is not "".
func (s *SQL) migrateInTx(ctx context.Context, lock string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback()
	if lock != "" {
		if _, err := tx.ExecContext(ctx, lock); err != nil {
			return fmt.Errorf("store: migrate lock: %w", err)
		}
	}
	if err := s.applyMigrations(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// migrateMySQL runs pending steps under a named lock, so two processes
// opening the same database do not both alter it. MySQL commits DDL
// implicitly; each step is recorded right after its statements, which
// are written to be harmless when repeated after a crash.
func (s *SQL) migrateMySQL(ctx context.Context) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK('mailagent_migrate', 60)").Scan(&got); err != nil {
		return fmt.Errorf("store: migrate lock: %w", err)
	}
	if got.Int64 != 1 {
		return fmt.Errorf("store: migrate: could not take the migration lock")
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK('mailagent_migrate')")
	myisam, err := myISAMTables(ctx, conn)
	if err != nil {
		return err
	}
	if len(myisam) > 0 && !s.opts.ConvertMyISAM {
		v, err := s.readVersion(ctx, conn)
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		if v < SchemaVersion {
			return fmt.Errorf("%w: %s use MyISAM, whose 1000-byte key limit the migration exceeds (Specified key was too long);"+
				" convert them to InnoDB first", ErrMyISAM, strings.Join(myisam, ", "))
		}
	}
	if s.opts.ConvertMyISAM {
		for _, t := range myisam {
			if _, err := conn.ExecContext(ctx, "ALTER TABLE "+t+" ENGINE=InnoDB"); err != nil {
				return fmt.Errorf("store: convert %s to InnoDB: %w", t, err)
			}
			s.log.Info("store: table converted from MyISAM to InnoDB", "table", t)
		}
	}
	return s.applyMigrations(ctx, conn)
}

// execQueryer is *sql.Tx or *sql.Conn.
type execQueryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// applyMigrations creates the version table if needed and runs the
// steps after the recorded version, recording each. A column that a step
// adds and that is already there (a crash between the ALTER and its
// record, on MySQL) is not an error.
func (s *SQL) applyMigrations(ctx context.Context, db execQueryer) error {
	bigint := "BIGINT"
	if s.driver == DriverSQLite {
		bigint = "INTEGER"
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+versionTable+
		" (version INTEGER NOT NULL PRIMARY KEY, applied "+bigint+" NOT NULL)"); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var cur sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT MAX(version) FROM "+versionTable).Scan(&cur); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if int(cur.Int64) > SchemaVersion {
		return fmt.Errorf("store: database schema version %d is newer than this program's %d", cur.Int64, SchemaVersion)
	}
	for _, m := range migrations {
		if m.version <= int(cur.Int64) {
			continue
		}
		stmts, err := s.applicable(ctx, db, m)
		if err != nil {
			return fmt.Errorf("store: migrate to %d: %w", m.version, err)
		}
		for _, q := range stmts {
			if _, err := db.ExecContext(ctx, q); err != nil && !isDuplicateColumn(err) {
				return fmt.Errorf("store: migrate to %d: %w", m.version, err)
			}
		}
		if m.foldedRows != nil && s.driver != DriverMySQL {
			if err := m.foldedRows(s, ctx, db); err != nil {
				return fmt.Errorf("store: migrate to %d: %w", m.version, err)
			}
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO "+versionTable+" (version, applied) VALUES (?, ?)",
			m.version, time.Now().Unix()); err != nil {
			return fmt.Errorf("store: migrate to %d: %w", m.version, err)
		}
		s.log.Info("store: schema migrated", "version", m.version)
	}
	return nil
}

// foldKeys rewrites the keys of SQLite and PostgreSQL rows that a case-folded lookup
// would miss: keys whose non-ASCII letters are not in their folded case
// ("JOSÉ@example.org", "info@BÜCHER.example"). Keys equal to a lookup
// spelling but for ASCII case, which NOCASE finds, are left as they
// are, so a database of ASCII addresses is not changed at all. A key
// whose folded form is already taken by another row is left too, and
// logged: that row is the one lookups find.
func (s *SQL) foldKeys(ctx context.Context, db execQueryer) error {
	type change struct{ table, column, old, new, display string }
	var changes []change
	scan := func(table, column string, fold func(string) (string, string, bool)) error {
		rows, err := db.QueryContext(ctx, "SELECT "+column+" FROM "+table)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return err
			}
			if n, display, ok := fold(k); ok {
				changes = append(changes, change{table, column, k, n, display})
			}
		}
		return rows.Err()
	}
	// found reports whether a lookup of key under keys finds stored.
	found := func(stored string, keys keyList) bool {
		for _, k := range keys.list() {
			if asciiFoldEqual(stored, k) {
				return true
			}
		}
		return false
	}
	domain := func(k string) (string, string, bool) {
		d, err := ParseDomain(k)
		if err != nil || found(k, domainKeys(d)) {
			return "", "", false
		}
		return d, "", true
	}
	if err := scan("domains", "domain", domain); err != nil {
		return err
	}
	if err := scan("transport", "domain", domain); err != nil {
		return err
	}
	err := scan("forwardings", "source", func(k string) (string, string, bool) {
		keys, _, err := sourceKeys(k)
		if err != nil {
			return "", "", false
		}
		// keys.k[0] is the canonical form; a lookup searches its
		// spellings (and those of the address as given, which may be
		// in another case than this row).
		if canon, _, err := sourceKeys(keys.k[0]); err != nil || found(k, canon) {
			return "", "", false
		}
		return keys.k[0], "", true
	})
	if err != nil {
		return err
	}
	err = scan("users", "email", func(k string) (string, string, bool) {
		a, err := ParseAddress(k)
		if err != nil || found(k, addressKeys(a.Canonical())) {
			return "", "", false
		}
		email, display := storedEmail(a)
		return email, display, true
	})
	if err != nil {
		return err
	}
	for _, c := range changes {
		var taken int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+c.table+" WHERE "+s.in(c.column, 1), c.new).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			s.log.Warn("store: key not case-folded: its folded form is another row's", "table", c.table, "key", c.old, "folded", c.new)
			continue
		}
		q := "UPDATE " + c.table + " SET " + c.column + " = ?"
		args := []any{c.new}
		if c.table == "users" {
			q += ", display_email = ?"
			args = append(args, c.display)
		}
		where, args := s.exact(c.column, c.old, args)
		if _, err := db.ExecContext(ctx, q+where, args...); err != nil {
			return err
		}
	}
	return nil
}

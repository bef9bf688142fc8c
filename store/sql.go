package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Driver names accepted by Open.
const (
	// DriverSQLite is the embedded default: modernc.org/sqlite, the DSN a
	// file path.
	DriverSQLite = "sqlite"
	// DriverMySQL is MySQL or MariaDB through github.com/go-sql-driver/mysql,
	// the DSN in that driver's syntax ("user:pass@tcp(host:3306)/mail").
	DriverMySQL = "mysql"
	// DriverPostgres is PostgreSQL through github.com/jackc/pgx/v5, the
	// DSN a URL or key=value string as libpq takes it
	// ("postgres://mail@127.0.0.1:5432/mail?sslmode=disable").
	DriverPostgres = "postgres"
)

// Options configure an SQL directory. The zero value is usable.
type Options struct {
	// Logger receives a message per schema migration step; nil discards
	// them. Lookup errors are returned, not logged.
	Logger *slog.Logger
	// Resolve configures (*SQL).Resolve.
	Resolve ResolveOptions
	// BusyTimeout is how long an SQLite statement waits for a lock held by
	// another connection or process; 0 means 5 seconds.
	BusyTimeout time.Duration
	// QueryTimeout bounds every directory lookup and write, from
	// waiting for a connection to reading the row: a database that does
	// not answer in time (a table locked by another client, a network
	// partition) fails the operation with an error wrapping
	// ErrUnavailable instead of holding the client that asked. 0 means
	// DefaultQueryTimeout (5 s); negative means no bound but the
	// caller's context.
	QueryTimeout time.Duration
	// Readers bounds the SQLite read pool; 0 means 2 × GOMAXPROCS.
	Readers int
	// CacheTTL enables a small cache of user, domain and forwarding
	// lookups: entries live at most this long, and any change made
	// through this *SQL clears the cache at once. Changes made by another
	// process (another server, the admin command) are seen as soon as
	// the change counter says so (see ChangePoll); changes made with
	// plain SQL become visible after at most CacheTTL. 0 disables the
	// cache.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached entries; 0 means 10,000.
	CacheSize int
	// ChangePoll is how often a directory with a cache reads the change
	// counter, a row that every write through any *SQL on the same
	// database increments, to clear the cache when another process or
	// node changed the directory: 0 means DefaultChangePoll (1 s). On
	// PostgreSQL every write also sends a NOTIFY that a listening
	// connection hears at once; the poll is then the fallback while
	// that connection is down. Negative turns both off: others'
	// changes are then seen after CacheTTL. Changes made
	// with plain SQL do not move the counter: they are seen after
	// CacheTTL, or at once after ClearCache.
	ChangePoll time.Duration
	// OnChange, if set, is called each time a change made through
	// another *SQL is noticed, after the cache was cleared.
	OnChange func()
	// Migrate makes Open bring a MySQL or PostgreSQL schema up to date,
	// which needs a database user that may CREATE and ALTER tables.
	// Without it, which is how a server runs on those engines (with the
	// seed's SELECT, INSERT, UPDATE and DELETE grants only), Open refuses
	// a schema that is behind with a *SchemaError. SQLite, the embedded
	// default, always migrates.
	Migrate bool
	// ConvertMyISAM lets a MySQL migration convert the directory's
	// MyISAM tables to InnoDB first: the migration's keys exceed
	// MyISAM's 1000-byte limit ("Specified key was too long"), so
	// without it a migration of MyISAM tables is refused (ErrMyISAM).
	ConvertMyISAM bool
}

// SQL is the directory kept in SQL tables: the seed installation's
// domains, forwardings, users and transport tables, extended by
// migrations. It implements Admin and is safe for concurrent use.
type SQL struct {
	driver string
	w      *sql.DB // writes and migrations; one connection for SQLite
	r      *sql.DB // reads; the same pool as w for MySQL
	log    *slog.Logger
	opts   Options
	cache  *cache

	// stmts holds the prepared statements of the hot path, by kind and
	// number of keys: lookups pass each spelling of a key once, so a
	// statement's shape depends on the key (ASCII or not, an IDN domain
	// or not): a few dozen shapes at most.
	stmtMu sync.RWMutex
	stmts  map[stmtKey]*sql.Stmt

	// pgcfg is the connection configuration of a PostgreSQL directory,
	// for the connection that LISTENs for changes (changes.go).
	pgcfg *pgx.ConnConfig
	// stopWatch ends the poll and the listener; watchers waits for them.
	stopWatch context.CancelFunc
	watchers  sync.WaitGroup
	// listening is closed once the listener first LISTENs; listenPID
	// is the server process of its latest connection.
	listening chan struct{}
	listenPID atomic.Uint32
	// serial is the change counter as last seen.
	serialMu sync.Mutex
	serial   int64
}

// SQL is the Admin (and so the Directory) the servers use.
var _ Admin = (*SQL)(nil)

// Open opens the directory in the database named by dsn. On SQLite, and
// on MySQL and PostgreSQL with Options.Migrate, it brings the schema up
// to date: a database made by the seed's CREATE TABLE statements, an
// older mailagent database and an empty one all work. Otherwise it
// checks that the schema is current (see Options.Migrate).
//
// For DriverSQLite, dsn is a file path; the file is created when missing
// and put in WAL mode, all writes go through one connection and reads
// through a pool. For DriverMySQL, dsn is a go-sql-driver DSN; the
// driver's default utf8mb4 connection character set is kept. For
// DriverPostgres, dsn is a pgx (libpq-style) DSN; the database must be
// in UTF8, PostgreSQL's default.
func Open(ctx context.Context, driver, dsn string, opts *Options) (*SQL, error) {
	s, err := connect(ctx, driver, dsn, opts)
	if err != nil {
		return nil, err
	}
	if driver == DriverSQLite || s.opts.Migrate {
		err = s.migrate(ctx)
	} else {
		err = s.checkSchema(ctx)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	s.stmts = map[stmtKey]*sql.Stmt{}
	if s.opts.CacheTTL > 0 {
		n := s.opts.CacheSize
		if n <= 0 {
			n = 10000
		}
		s.cache = newCache(n, s.opts.CacheTTL, time.Now)
	}
	if err := s.watchChanges(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// connect opens and pings the database, without looking at its schema.
func connect(ctx context.Context, driver, dsn string, opts *Options) (*SQL, error) {
	s := &SQL{driver: driver}
	if opts != nil {
		s.opts = *opts
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var err error
	switch driver {
	case DriverSQLite:
		err = s.openSQLite(dsn)
	case DriverMySQL:
		err = s.openMySQL(dsn)
	case DriverPostgres:
		err = s.openPostgres(dsn)
	default:
		return nil, fmt.Errorf("store: unknown driver %q (want %q, %q or %q)", driver, DriverSQLite, DriverMySQL, DriverPostgres)
	}
	if err != nil {
		return nil, err
	}
	if err := s.w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: open %s: %w", driver, err)
	}
	if driver == DriverSQLite {
		if err := s.walMode(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *SQL) openSQLite(path string) error {
	if path == "" || strings.ContainsAny(path, "?#") {
		return fmt.Errorf("store: sqlite path %q must be a plain file path", path)
	}
	bt := s.opts.BusyTimeout
	if bt <= 0 {
		bt = 5 * time.Second
	}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(bt.Milliseconds()))
	q.Set("_synchronous", "FULL")
	q.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	// One writer: SQLite serialises writers anyway, and a single
	// connection turns lock contention inside this process into queueing
	// instead of SQLITE_BUSY.
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	q.Del("_txlock")
	q.Set("_query_only", "1")
	r, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		w.Close()
		return fmt.Errorf("store: open sqlite: %w", err)
	}
	n := s.opts.Readers
	if n <= 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.w, s.r = w, r
	return nil
}

// walMode puts the SQLite file in WAL mode (readers do not block the
// writer nor each other), a setting stored in the file. Changing the
// journal mode does not wait on the busy timeout, so when another
// process is setting up the same new file it is retried for as long as
// the busy timeout.
func (s *SQL) walMode(ctx context.Context) error {
	bt := s.opts.BusyTimeout
	if bt <= 0 {
		bt = 5 * time.Second
	}
	deadline := time.Now().Add(bt)
	delay := time.Millisecond
	for {
		var mode string
		err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		if err == nil && strings.EqualFold(mode, "wal") {
			return nil
		}
		if err == nil {
			return fmt.Errorf("store: sqlite: journal mode is %q, WAL unavailable", mode)
		}
		if !isBusy(err) || time.Now().After(deadline) {
			return fmt.Errorf("store: sqlite: set WAL mode: %w", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

func (s *SQL) openMySQL(dsn string) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("store: mysql dsn: %w", err)
	}
	// Timestamps are stored as Unix seconds, and the driver's default
	// connection collation is utf8mb4, so SMTPUTF8 addresses round-trip.
	cfg.ParseTime = false
	// UPDATE reports matched rows, not changed ones, so setting a value
	// to what it already is is not mistaken for "no such row".
	cfg.ClientFoundRows = true
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("store: mysql: %w", err)
	}
	db := sql.OpenDB(c)
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetMaxIdleConns(8)
	s.w, s.r = db, db
	return nil
}

// ClearCache drops every cached lookup at once, so that changes made by
// another process (the admin command, plain SQL) are seen before
// Options.CacheTTL passes: a server calls it on SIGHUP.
func (s *SQL) ClearCache() { s.cache.clear() }

// Close closes the database connections.
func (s *SQL) Close() error {
	if s.stopWatch != nil {
		s.stopWatch()
		s.watchers.Wait()
	}
	var errs []error
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	if s.r != nil && s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// Driver returns the driver name the directory was opened with.
func (s *SQL) Driver() string { return s.driver }

// userColumns are the users columns a lookup reads, in scan order.
const userColumns = "email, display_email, password, maildir, quota_bytes, quota_messages, disabled, created, updated"

// Kinds of prepared lookup statements.
const (
	stmtDomain = iota
	stmtUser
	stmtForwarding
	stmtTransport
	stmtStep
	stmtUserHost
	stmtDomainHost
)

// stmtKey names a prepared lookup statement: its kind and the number of
// keys of each of its key lists.
type stmtKey struct {
	kind uint8
	n    [3]uint8
}

// stmt returns the prepared read statement k, preparing it on first use.
// Addresses and domains are looked up in their Unicode and ASCII forms
// at once, so rows written by hand with either form are found. The key
// of the row found is checked again in Go (sameDomain, sameAddress):
// MySQL's _ci collations equate more than case ("jose" = "josé"), which
// must not make one user's mailbox or one domain answer for another.
func (s *SQL) stmt(ctx context.Context, k stmtKey) (*sql.Stmt, error) {
	s.stmtMu.RLock()
	st, ok := s.stmts[k]
	s.stmtMu.RUnlock()
	if ok {
		return st, nil
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts[k]; ok {
		return st, nil
	}
	if s.stmts == nil {
		return nil, errors.New("store: directory closed")
	}
	st, err := s.r.PrepareContext(ctx, s.query(k))
	if err != nil {
		return nil, fmt.Errorf("store: prepare: %w", err)
	}
	s.stmts[k] = st
	return st, nil
}

// query returns the text of the lookup statement k.
func (s *SQL) query(k stmtKey) string {
	switch k.kind {
	case stmtDomain:
		return "SELECT domain FROM domains WHERE " + s.in("domain", k.n[0]) + s.first("domain", k.n[0])
	case stmtUser:
		return "SELECT " + userColumns + " FROM users WHERE " + s.in("email", k.n[0]) + s.first("email", k.n[0])
	case stmtForwarding:
		return "SELECT source, destination FROM forwardings WHERE " + s.in("source", k.n[0]) + s.first("source", k.n[0])
	case stmtTransport:
		return "SELECT domain, transport FROM transport WHERE " + s.in("domain", k.n[0]) + s.first("domain", k.n[0])
	case stmtUserHost:
		return "SELECT email, host FROM users WHERE " + s.in("email", k.n[0]) + s.first("email", k.n[0])
	case stmtDomainHost:
		return "SELECT domain, host FROM domains WHERE " + s.in("domain", k.n[0]) + s.first("domain", k.n[0])
	}
	return s.stepQuery(k.n[0], k.n[1], k.n[2])
}

// first ends a lookup of n keys: it keeps one row, and when there are
// several keys, the row stored under the first (the canonical spelling,
// which a further argument repeats), if any. Rows stored under two
// spellings that fold alike exist only when written by hand on SQLite
// (foldKeys leaves them and logs them).
func (s *SQL) first(col string, n uint8) string {
	if n == 1 {
		return " LIMIT 1"
	}
	return " ORDER BY " + s.ci(col) + " = " + s.ciArg() + " DESC LIMIT 1"
}

// keyArgs appends keys to args as statement arguments.
func keyArgs(args []any, keys []string) []any {
	for _, k := range keys {
		args = append(args, k)
	}
	return args
}

// queryRow runs the lookup statement of kind with keys, each a distinct
// spelling.
func (s *SQL) queryRow(ctx context.Context, kind uint8, keys []string) (*sql.Row, error) {
	st, err := s.stmt(ctx, stmtKey{kind: kind, n: [3]uint8{uint8(len(keys))}})
	if err != nil {
		return nil, err
	}
	var buf [nKeys + 1]any
	args := keyArgs(buf[:0], keys)
	if len(keys) > 1 {
		args = append(args, args[0])
	}
	return st.QueryRowContext(ctx, args...), nil
}

// isDuplicate reports whether err is a primary or unique key violation.
func isDuplicate(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		// SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE.
		return se.Code() == 1555 || se.Code() == 2067
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062 // ER_DUP_ENTRY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
}

// isDuplicateColumn reports MySQL's ER_DUP_FIELDNAME, raised when a
// column that a migration adds is already there.
func isDuplicateColumn(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1060
}

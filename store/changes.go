package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Several processes may share one directory database: servers on
// several nodes, the admin command, a server and its restarted self.
// Each keeps its own lookup cache, which a write through the same *SQL
// clears at once; for the others to see the change as soon, every write
// also increments the serial of the one row of changeTable in its own
// transaction, and every *SQL with a cache polls that row (one primary
// key lookup, by default each second) and clears its cache when the
// serial moved. On PostgreSQL the write also sends a NOTIFY in the same
// transaction, delivered at commit to every *SQL listening, so there a
// change is seen at once and the poll is only the fallback for a lost
// listening connection.

// changeTable is the change counter's table; mailagent_ like the
// version table, as it may share a database with other applications.
const changeTable = "mailagent_changes"

// notifyChannel is the PostgreSQL channel of directory changes; its
// payload is the schema changed, since channels are per database and
// several directories may live in schemas of one database.
const notifyChannel = "mailagent_directory"

// DefaultChangePoll is how often a directory with a cache polls the
// change counter when Options.ChangePoll is 0.
const DefaultChangePoll = time.Second

// noteChange counts a write in its transaction tx and returns the
// counter's new value, which the transaction's own reads see.
func (s *SQL) noteChange(ctx context.Context, tx *sql.Tx) (int64, error) {
	if _, err := tx.ExecContext(ctx, "UPDATE "+changeTable+" SET serial = serial + 1 WHERE id = 1"); err != nil {
		return 0, fmt.Errorf("count the change: %w", err)
	}
	var n int64
	err := tx.QueryRowContext(ctx, "SELECT serial FROM "+changeTable+" WHERE id = 1").Scan(&n)
	if err != nil && err != sql.ErrNoRows {
		return 0, fmt.Errorf("count the change: %w", err)
	}
	if s.driver == DriverPostgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_notify('"+notifyChannel+"', current_schema())"); err != nil {
			return 0, fmt.Errorf("notify the change: %w", err)
		}
	}
	return n, nil
}

// wrote records the counter's value after a write through s committed:
// that write cleared the cache itself, and seeing its count again (in
// the poll or a notification) is no change. A write committed by
// another node before it holds a lower count; this write's own
// clearing came after that one.
func (s *SQL) wrote(serial int64) {
	s.serialMu.Lock()
	s.serial = serial
	s.serialMu.Unlock()
}

// check reads the counter and clears the cache when it moved since it
// was last seen.
func (s *SQL) check(ctx context.Context) error {
	n, err := s.readSerial(ctx)
	if err != nil {
		return err
	}
	s.serialMu.Lock()
	moved := n != s.serial
	s.serial = n
	s.serialMu.Unlock()
	if moved {
		s.cache.clear()
		if s.opts.OnChange != nil {
			s.opts.OnChange()
		}
	}
	return nil
}

// readSerial returns the change counter.
func (s *SQL) readSerial(ctx context.Context) (int64, error) {
	return bounded(s, ctx, func(ctx context.Context) (int64, error) {
		var n int64
		err := s.r.QueryRowContext(ctx, "SELECT serial FROM "+changeTable+" WHERE id = 1").Scan(&n)
		if err == sql.ErrNoRows {
			// The row is the migration's; a row deleted by hand
			// counts as no change yet.
			return 0, nil
		}
		return n, err
	})
}

// watchChanges starts what clears the cache on changes made by others:
// the poll of the counter and, on PostgreSQL, the listener. Close stops
// them. It reads the counter first, so that a change made after Open
// returns is never taken for the starting state.
func (s *SQL) watchChanges(ctx context.Context) error {
	if (s.cache == nil && s.opts.OnChange == nil) || s.opts.ChangePoll < 0 {
		return nil
	}
	serial, err := s.readSerial(ctx)
	if err != nil {
		return fmt.Errorf("store: read the change counter: %w", err)
	}
	s.wrote(serial)
	wctx, cancel := context.WithCancel(context.Background())
	s.stopWatch = cancel
	s.listening = make(chan struct{})
	every := s.opts.ChangePoll
	if every == 0 {
		every = DefaultChangePoll
	}
	s.watchers.Add(1)
	go func() {
		defer s.watchers.Done()
		s.pollChanges(wctx, every)
	}()
	if s.pgcfg != nil {
		s.watchers.Add(1)
		go func() {
			defer s.watchers.Done()
			s.listenChanges(wctx)
		}()
	}
	return nil
}

// pollChanges checks the counter every interval until ctx ends. A read
// that fails (the database down) is retried at the next tick: lookups
// fail meanwhile anyway, and the cache still ends with its TTL.
func (s *SQL) pollChanges(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.check(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("store: reading the change counter", "err", err)
		}
	}
}

// listenChanges holds a PostgreSQL connection that LISTENs for the
// NOTIFY of every write and checks the counter on each, reconnecting
// with a growing delay when the connection is lost, and checking once
// on each new connection for what changed while it was down.
func (s *SQL) listenChanges(ctx context.Context) {
	delay := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		listened, err := s.listenOnce(ctx, &first)
		if ctx.Err() != nil {
			return
		}
		if listened {
			delay = 100 * time.Millisecond // a new outage
		}
		s.log.Warn("store: listening for directory changes", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// listenOnce connects, LISTENs and handles notifications until the
// connection fails or ctx ends; listened says whether it got as far as
// listening.
func (s *SQL) listenOnce(ctx context.Context, first *bool) (listened bool, err error) {
	d := s.queryTimeout()
	if d == 0 {
		d = DefaultQueryTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, d)
	conn, err := pgx.ConnectConfig(cctx, s.pgcfg)
	if err == nil {
		_, err = conn.Exec(cctx, "LISTEN "+notifyChannel)
	}
	var schema string
	if err == nil {
		err = conn.QueryRow(cctx, "SELECT current_schema()").Scan(&schema)
	}
	cancel()
	if conn != nil {
		defer conn.Close(context.WithoutCancel(ctx))
	}
	if err != nil {
		return false, err
	}
	s.listenPID.Store(conn.PgConn().PID())
	if *first {
		*first = false
		close(s.listening)
	} else if err := s.check(ctx); err != nil {
		return true, err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		if n.Payload != schema {
			continue
		}
		if err := s.check(ctx); err != nil {
			return true, err
		}
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
)

// ErrUnavailable is returned, wrapped, when the database does not answer
// a directory query within Options.QueryTimeout, or SQLite stays locked
// by another connection for its busy timeout. It is a temporary
// failure: servers answer it with a temporary reply (SMTP 451 4.3.0,
// IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]) and never wait longer.
var ErrUnavailable = errors.New("store: directory unavailable")

// DefaultQueryTimeout is Options.QueryTimeout's default: well above any
// healthy lookup, well below the minutes SMTP clients wait for a reply
// (RFC 5321 4.5.3.2) and an IMAP or POP3 client for a login.
const DefaultQueryTimeout = 5 * time.Second

// queryTimeout returns the bound on one directory operation, 0 for none.
func (s *SQL) queryTimeout() time.Duration {
	switch d := s.opts.QueryTimeout; {
	case d < 0:
		return 0
	case d == 0:
		return DefaultQueryTimeout
	default:
		return d
	}
}

// bounded runs f with ctx bounded by the query timeout. When that
// deadline, not ctx's own end, stops f (a table locked by LOCK TABLES, a
// database that stopped answering), or SQLite stays busy, the error
// wraps ErrUnavailable. A lookup that answered stays as it is.
func bounded[T any](s *SQL, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	d := s.queryTimeout()
	qctx, cancel := ctx, context.CancelFunc(func() {})
	if d > 0 {
		qctx, cancel = context.WithTimeout(ctx, d)
	}
	defer cancel()
	v, err := f(qctx)
	switch {
	case err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable):
	case ctx.Err() == nil && qctx.Err() != nil:
		err = fmt.Errorf("%w: no answer within %s: %w", ErrUnavailable, d, err)
	case isBusy(err):
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return v, err
}

// isBusy reports SQLITE_BUSY (and its extended codes): another
// connection held a lock for the whole busy timeout.
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == 5
}

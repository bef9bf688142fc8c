package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrNotEmpty is returned when removing a domain that still has users or
// forwardings.
var ErrNotEmpty = errors.New("store: domain still has users or forwardings")

// exec runs a write in a transaction of its own (see inTx).
func (s *SQL) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, q, args...)
		return err
	})
	return res, err
}

// inTx runs f in a transaction on the write connection, bounded by the
// query timeout, and clears the cache after it, whatever its outcome: a
// failed statement may still have changed rows before failing. The
// transaction also counts the change (noteChange), so that every other
// *SQL on the database, in this process or another node, clears its
// cache too.
func (s *SQL) inTx(ctx context.Context, f func(ctx context.Context, tx *sql.Tx) error) error {
	defer s.cache.clear()
	_, err := bounded(s, ctx, func(ctx context.Context) (struct{}, error) {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return struct{}{}, err
		}
		defer tx.Rollback()
		if err := f(ctx, tx); err != nil {
			return struct{}{}, err
		}
		serial, err := s.noteChange(ctx, tx)
		if err != nil {
			return struct{}{}, err
		}
		if err := tx.Commit(); err != nil {
			return struct{}{}, err
		}
		s.wrote(serial)
		return struct{}{}, nil
	})
	return err
}

// storedKeys returns, exactly as stored, the keys of the rows of table
// that a lookup by keys accepts: the rows whose column col the column's
// collation finds equal to one of keys, kept when match accepts their
// key. The check in Go is what lookups do (sameDomain, Address.Key,
// sourceKey): MySQL's _ci collations equate more than case ("jose" =
// "josé", "bucher" = "bücher"), which must not make a write by one
// address change another's row. On MySQL the rows are locked until tx
// ends.
func (s *SQL) storedKeys(ctx context.Context, tx *sql.Tx, table, col string, keys []string, match func(stored string) bool) ([]string, error) {
	q := "SELECT " + col + " FROM " + table + " WHERE " + s.in(col, uint8(len(keys)))
	if s.driver != DriverSQLite {
		q += " FOR UPDATE"
	}
	rows, err := tx.QueryContext(ctx, q, keyArgs(nil, keys)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		if match(k) {
			out = append(out, k)
		}
	}
	return out, rows.Err()
}

// exact returns the WHERE clause that names the row whose column col
// holds key byte for byte, and the statement's arguments: args, then
// the clause's. SQLite's key columns (NOCASE) cannot hold two keys that
// differ in ASCII case only, so "=" names one row there; PostgreSQL's
// unique index on the lowered key does the same (see ci). MySQL's
// collations equate keys that differ in more ("jose" = "josé"), so the
// key is compared byte for byte too; the first comparison, in the
// column's collation, lets MySQL search the key's index.
func (s *SQL) exact(col, key string, args []any) (string, []any) {
	args = args[:len(args):len(args)]
	if s.driver == DriverMySQL {
		return " WHERE " + col + " = ? AND " + col + " COLLATE utf8mb4_bin = ?", append(args, key, key)
	}
	return " WHERE " + s.in(col, 1), append(args, key)
}

// writeRows runs q, an UPDATE or DELETE without its WHERE clause, with
// args on each row of table that storedKeys returns, named by its exact
// key, in one transaction. It returns ErrNotFound when there is none.
// what names the row in errors.
func (s *SQL) writeRows(ctx context.Context, what, table, col string, keys []string, match func(string) bool, q string, args ...any) error {
	errNone := fmt.Errorf("%w: %s", ErrNotFound, what)
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return s.writeStored(ctx, tx, errNone, table, col, keys, match, q, args...)
	})
	if err != nil && err != errNone {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return err
}

// writeStored is writeRows within tx: it returns errNone when no row
// is found (nil: none is fine).
func (s *SQL) writeStored(ctx context.Context, tx *sql.Tx, errNone error, table, col string, keys []string, match func(string) bool, q string, args ...any) error {
	stored, err := s.storedKeys(ctx, tx, table, col, keys, match)
	if err != nil {
		return err
	}
	if len(stored) == 0 {
		return errNone
	}
	for _, k := range stored {
		where, a := s.exact(col, k, args)
		if _, err := tx.ExecContext(ctx, q+where, a...); err != nil {
			return err
		}
	}
	return nil
}

// isDomain returns a match for storedKeys that accepts the stored
// spellings of the normalised domain d.
func isDomain(d string) func(string) bool {
	return func(stored string) bool { return sameDomain(stored, d) }
}

// AddDomain adds a local domain, stored in its normalised form. On MySQL
// a domain equal to an existing one under the table's collation
// ("bucher.example" beside "bücher.example") is refused with ErrExists,
// as the seed's schema makes them one key; the same holds for users and
// forwardings.
func (s *SQL) AddDomain(ctx context.Context, domain string) error {
	d, err := ParseDomain(domain)
	if err != nil {
		return err
	}
	if ok, err := s.IsLocalDomain(ctx, d); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("%w: domain %s", ErrExists, d)
	}
	_, err = s.exec(ctx, "INSERT INTO domains (domain) VALUES (?)", d)
	if isDuplicate(err) {
		return fmt.Errorf("%w: domain %s", ErrExists, d)
	}
	if err != nil {
		return fmt.Errorf("store: add domain %s: %w", d, err)
	}
	return nil
}

// RemoveDomain removes a local domain. It refuses with ErrNotEmpty while
// users or forwardings of the domain remain, so mail for them is not
// suddenly refused as relaying. Only the rows of d itself count and go,
// never those of a domain that MySQL's collation takes for it
// ("bucher.example" for "bücher.example").
func (s *SQL) RemoveDomain(ctx context.Context, domain string) error {
	d, err := ParseDomain(domain)
	if err != nil {
		return err
	}
	a := DomainASCII(d)
	errNone := fmt.Errorf("%w: domain %s", ErrNotFound, d)
	err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n, err := s.countOfDomain(ctx, tx, d, a)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: %s has %d", ErrNotEmpty, d, n)
		}
		dk := domainKeys(d)
		return s.writeStored(ctx, tx, errNone, "domains", "domain", dk.list(), isDomain(d), "DELETE FROM domains")
	})
	if err != nil && err != errNone && !errors.Is(err, ErrNotEmpty) {
		return fmt.Errorf("store: remove domain %s: %w", d, err)
	}
	return err
}

// countOfDomain returns the number of users and forwardings of the
// normalised domain d, whose A-label form is a. LIKE follows the
// collation, which on MySQL also equates "bucher" and "bücher": the
// domain of each row it finds is checked again in Go.
func (s *SQL) countOfDomain(ctx context.Context, tx *sql.Tx, d, a string) (int, error) {
	rows, err := tx.QueryContext(ctx,
		"SELECT email FROM users WHERE "+s.like("email")+" OR "+s.like("email")+
			" UNION ALL SELECT source FROM forwardings WHERE "+s.like("source")+" OR "+s.like("source"),
		"%@"+d, "%@"+a, "%@"+d, "%@"+a)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return 0, err
		}
		if sameDomain(k[strings.LastIndexByte(k, '@')+1:], d) {
			n++
		}
	}
	return n, rows.Err()
}

// ListDomains returns the local domains, sorted.
func (s *SQL) ListDomains(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT domain FROM domains")
	if err != nil {
		return nil, fmt.Errorf("store: list domains: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("store: list domains: %w", err)
		}
		if n, err := ParseDomain(d); err == nil {
			d = n
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list domains: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// AddUser adds a user. The address's domain must be local (else
// ErrNotLocal); Created and Updated are set to now. The address is
// stored as typed, or case-folded with the typed form beside it when it
// has non-ASCII letters outside their folded case (see storedEmail); it
// is matched case-insensitively either way. An empty Maildir
// means DefaultMaildir; a relative one must stay below the Maildir base
// (no ".." element), an absolute one must be clean. The given User is
// not modified.
func (s *SQL) AddUser(ctx context.Context, u *User) error {
	a, err := ParseAddress(u.Address)
	if err != nil {
		return err
	}
	if ok, err := s.IsLocalDomain(ctx, a.Domain); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%w: %s", ErrNotLocal, a.Domain)
	}
	if _, err := s.LookupUser(ctx, a.String()); err == nil {
		return fmt.Errorf("%w: user %s", ErrExists, a)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if u.QuotaBytes < 0 || u.QuotaMessages < 0 {
		return fmt.Errorf("store: add user %s: negative quota", a)
	}
	if m := u.Maildir; m != "" && !filepath.IsLocal(m) && (!filepath.IsAbs(m) || filepath.Clean(m) != m) {
		return fmt.Errorf("store: add user %s: maildir %q escapes the Maildir base or is not clean", a, m)
	}
	now := time.Now().Unix()
	email, display := storedEmail(a)
	_, err = s.exec(ctx, "INSERT INTO users ("+userColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		email, display, u.PasswordHash, u.Maildir, u.QuotaBytes, u.QuotaMessages, boolInt(u.Disabled), now, now)
	if isDuplicate(err) {
		return fmt.Errorf("%w: user %s", ErrExists, a)
	}
	if err != nil {
		return fmt.Errorf("store: add user %s: %w", a, err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeUser runs q, an UPDATE or DELETE of the users table without its
// WHERE clause, with args on the row of a: the row LookupUser finds for
// a, whose local part matches a's under Unicode simple case folding
// (Address.Key) and nothing else a MySQL collation ignores ("jose" is
// not "josé"). It returns ErrNotFound when there is none.
func (s *SQL) writeUser(ctx context.Context, a Address, q string, args ...any) error {
	key := a.Key()
	keys := addressKeys(a)
	return s.writeRows(ctx, "user "+a.String(), "users", "email", keys.list(), func(stored string) bool {
		sa, err := ParseAddress(stored)
		return err == nil && sa.Key() == key
	}, q, args...)
}

// RemoveUser removes a user, matched as LookupUser matches it. Its
// Maildir is left on disk.
func (s *SQL) RemoveUser(ctx context.Context, address string) error {
	a, err := ParseAddress(address)
	if err != nil {
		return err
	}
	return s.writeUser(ctx, a, "DELETE FROM users")
}

// ListUsers returns the users of domain, or of all domains when domain
// is "", sorted by address.
func (s *SQL) ListUsers(ctx context.Context, domain string) ([]*User, error) {
	q := "SELECT " + userColumns + " FROM users"
	var args []any
	d := ""
	if domain != "" {
		var err error
		if d, err = ParseDomain(domain); err != nil {
			return nil, err
		}
		q += " WHERE " + s.like("email") + " OR " + s.like("email")
		args = []any{"%@" + d, "%@" + DomainASCII(d)}
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		var ur userRow
		if err := rows.Scan(ur.dest()...); err != nil {
			return nil, fmt.Errorf("store: list users: %w", err)
		}
		u := ur.user("")
		// LIKE follows the collation, which on MySQL also equates
		// "bucher" and "bücher".
		if d != "" && !strings.HasSuffix(u.Address, "@"+d) {
			continue
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

// SetPassword replaces a user's password hash (as produced by package
// auth, with its scheme prefix). The user is matched as LookupUser
// matches it.
func (s *SQL) SetPassword(ctx context.Context, address, hash string) error {
	a, err := ParseAddress(address)
	if err != nil {
		return err
	}
	return s.writeUser(ctx, a, "UPDATE users SET password = ?, updated = ?", hash, time.Now().Unix())
}

// SetDisabled disables or enables a user, matched as LookupUser matches
// it. A disabled user can neither log in nor receive mail; its mailbox
// is kept.
func (s *SQL) SetDisabled(ctx context.Context, address string, disabled bool) error {
	a, err := ParseAddress(address)
	if err != nil {
		return err
	}
	return s.writeUser(ctx, a, "UPDATE users SET disabled = ?, updated = ?", boolInt(disabled), time.Now().Unix())
}

// SetQuota sets a user's limits; 0 means no limit. The user is matched
// as LookupUser matches it.
func (s *SQL) SetQuota(ctx context.Context, address string, bytes, messages int64) error {
	a, err := ParseAddress(address)
	if err != nil {
		return err
	}
	if bytes < 0 || messages < 0 {
		return fmt.Errorf("store: quota of %s: negative limit", a)
	}
	return s.writeUser(ctx, a, "UPDATE users SET quota_bytes = ?, quota_messages = ?, updated = ?",
		bytes, messages, time.Now().Unix())
}

// AddForwarding adds a forwarding from source (an address, or "@domain"
// for a catch-all) to destinations. The source's domain must be local
// (else ErrNotLocal); each destination must parse. The source is stored
// case-folded (Address.Canonical), as Postfix looks sources up. Including source
// among the destinations keeps a copy in source's own mailbox.
func (s *SQL) AddForwarding(ctx context.Context, source string, destinations []string) error {
	keys, k1, err := sourceKeys(source)
	if err != nil {
		return err
	}
	domain := k1[strings.LastIndexByte(k1, '@')+1:]
	if ok, err := s.IsLocalDomain(ctx, domain); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%w: %s", ErrNotLocal, domain)
	}
	if len(destinations) == 0 {
		return fmt.Errorf("store: forwarding %s: no destination", k1)
	}
	norm := make([]string, 0, len(destinations))
	for _, d := range destinations {
		a, err := ParseAddress(strings.TrimSpace(d))
		if err != nil {
			return err
		}
		norm = append(norm, a.String())
	}
	if _, err := s.Forwardings(ctx, keys.k[0]); err == nil {
		return fmt.Errorf("%w: forwarding %s", ErrExists, k1)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	_, err = s.exec(ctx, "INSERT INTO forwardings (source, destination) VALUES (?, ?)", keys.k[0], strings.Join(norm, ","))
	if isDuplicate(err) {
		return fmt.Errorf("%w: forwarding %s", ErrExists, k1)
	}
	if err != nil {
		return fmt.Errorf("store: add forwarding %s: %w", k1, err)
	}
	return nil
}

// RemoveForwarding removes the forwarding whose source is source,
// matched as Forwardings matches it.
func (s *SQL) RemoveForwarding(ctx context.Context, source string) error {
	keys, key, err := sourceKeys(source)
	if err != nil {
		return err
	}
	return s.writeRows(ctx, "forwarding "+key, "forwardings", "source", keys.list(), func(stored string) bool {
		k, err := sourceKey(stored)
		return err == nil && k == key
	}, "DELETE FROM forwardings")
}

// ListForwardings returns every forwarding, source to destinations.
func (s *SQL) ListForwardings(ctx context.Context) (map[string][]string, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT source, destination FROM forwardings")
	if err != nil {
		return nil, fmt.Errorf("store: list forwardings: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var src, dst string
		if err := rows.Scan(&src, &dst); err != nil {
			return nil, fmt.Errorf("store: list forwardings: %w", err)
		}
		if key, err := sourceKey(src); err == nil {
			src = key
		}
		out[src] = splitDestinations(dst)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list forwardings: %w", err)
	}
	return out, nil
}

// SetTransport sets the transport of domain (which need not be local: a
// transport entry can route a remote domain to a smart host). spec must
// parse with ParseTransport and is stored in canonical form. It replaces
// the entry of domain, whichever form (U-labels or A-labels) it is
// stored in. On MySQL, a domain equal to another domain's entry under
// the table's collation ("bucher.example" beside "bücher.example") is
// refused with ErrExists rather than changing that entry, as the seed's
// schema makes them one key.
func (s *SQL) SetTransport(ctx context.Context, domain, spec string) error {
	d, err := ParseDomain(domain)
	if err != nil {
		return err
	}
	t, err := ParseTransport(spec)
	if err != nil {
		return err
	}
	errTaken := fmt.Errorf("%w: transport %s: another domain's entry has the same key", ErrExists, d)
	err = s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		dk := domainKeys(d)
		if err := s.writeStored(ctx, tx, nil, "transport", "domain", dk.list(), isDomain(d), "DELETE FROM transport"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO transport (domain, transport) VALUES (?, ?)", d, t.String())
		if isDuplicate(err) {
			return errTaken
		}
		return err
	})
	if err != nil && err != errTaken {
		return fmt.Errorf("store: set transport %s: %w", d, err)
	}
	return err
}

// RemoveTransport removes the transport entry of domain, matched as
// Transport matches it.
func (s *SQL) RemoveTransport(ctx context.Context, domain string) error {
	d, err := ParseDomain(domain)
	if err != nil {
		return err
	}
	dk := domainKeys(d)
	return s.writeRows(ctx, "transport "+d, "transport", "domain", dk.list(), isDomain(d), "DELETE FROM transport")
}

// ListTransports returns every transport entry, domain to spec.
func (s *SQL) ListTransports(ctx context.Context) (map[string]string, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT domain, transport FROM transport")
	if err != nil {
		return nil, fmt.Errorf("store: list transports: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var d, t string
		if err := rows.Scan(&d, &t); err != nil {
			return nil, fmt.Errorf("store: list transports: %w", err)
		}
		if n, err := ParseDomain(d); err == nil {
			d = n
		}
		out[d] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list transports: %w", err)
	}
	return out, nil
}

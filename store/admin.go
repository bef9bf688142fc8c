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

// exec runs a write and clears the cache after it, whatever its outcome:
// a failed statement may still have changed rows before failing.
func (s *SQL) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	defer s.cache.clear()
	return s.w.ExecContext(ctx, q, args...)
}

// affected turns "no row changed" into ErrNotFound.
func affected(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	return nil
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
// suddenly refused as relaying.
func (s *SQL) RemoveDomain(ctx context.Context, domain string) error {
	d, err := ParseDomain(domain)
	if err != nil {
		return err
	}
	a := DomainASCII(d)
	var n int
	err = s.w.QueryRowContext(ctx,
		"SELECT (SELECT COUNT(*) FROM users WHERE email LIKE ? OR email LIKE ?)"+
			" + (SELECT COUNT(*) FROM forwardings WHERE source LIKE ? OR source LIKE ?)",
		"%@"+d, "%@"+a, "%@"+d, "%@"+a).Scan(&n)
	if err != nil {
		return fmt.Errorf("store: remove domain %s: %w", d, err)
	}
	if n > 0 {
		return fmt.Errorf("%w: %s has %d", ErrNotEmpty, d, n)
	}
	res, err := s.exec(ctx, "DELETE FROM domains WHERE domain IN (?, ?)", d, a)
	return affected(res, err, "domain "+d)
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

// userKeys parses address for a write on the users table and returns
// the statement's WHERE clause and its arguments after extra.
func userKeys(address string, extra ...any) (Address, string, []any, error) {
	a, err := ParseAddress(address)
	if err != nil {
		return Address{}, "", nil, err
	}
	keys := addressKeys(a)
	return a, " WHERE email" + in(uint8(keys.n)), keyArgs(extra, keys.list()), nil
}

// RemoveUser removes a user. Its Maildir is left on disk.
func (s *SQL) RemoveUser(ctx context.Context, address string) error {
	a, where, args, err := userKeys(address)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, "DELETE FROM users"+where, args...)
	return affected(res, err, "user "+a.String())
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
		q += " WHERE email LIKE ? OR email LIKE ?"
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
// auth, with its scheme prefix).
func (s *SQL) SetPassword(ctx context.Context, address, hash string) error {
	a, where, args, err := userKeys(address, hash, time.Now().Unix())
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, "UPDATE users SET password = ?, updated = ?"+where, args...)
	return affected(res, err, "user "+a.String())
}

// SetDisabled disables or enables a user. A disabled user can neither
// log in nor receive mail; its mailbox is kept.
func (s *SQL) SetDisabled(ctx context.Context, address string, disabled bool) error {
	a, where, args, err := userKeys(address, boolInt(disabled), time.Now().Unix())
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, "UPDATE users SET disabled = ?, updated = ?"+where, args...)
	return affected(res, err, "user "+a.String())
}

// SetQuota sets a user's limits; 0 means no limit.
func (s *SQL) SetQuota(ctx context.Context, address string, bytes, messages int64) error {
	a, where, args, err := userKeys(address, bytes, messages, time.Now().Unix())
	if err != nil {
		return err
	}
	if bytes < 0 || messages < 0 {
		return fmt.Errorf("store: quota of %s: negative limit", a)
	}
	res, err := s.exec(ctx, "UPDATE users SET quota_bytes = ?, quota_messages = ?, updated = ?"+where, args...)
	return affected(res, err, "user "+a.String())
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

// RemoveForwarding removes the forwarding whose source is source.
func (s *SQL) RemoveForwarding(ctx context.Context, source string) error {
	keys, key, err := sourceKeys(source)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, "DELETE FROM forwardings WHERE source"+in(uint8(keys.n)), keyArgs(nil, keys.list())...)
	return affected(res, err, "forwarding "+key)
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
// parse with ParseTransport and is stored in canonical form.
func (s *SQL) SetTransport(ctx context.Context, domain, spec string) error {
	d, err := ParseDomain(domain)
	if err != nil {
		return err
	}
	t, err := ParseTransport(spec)
	if err != nil {
		return err
	}
	q := "INSERT INTO transport (domain, transport) VALUES (?, ?) ON CONFLICT (domain) DO UPDATE SET transport = excluded.transport"
	if s.driver == DriverMySQL {
		q = "INSERT INTO transport (domain, transport) VALUES (?, ?) ON DUPLICATE KEY UPDATE transport = VALUES(transport)"
	}
	if a := DomainASCII(d); a != d {
		// Replace a hand-written A-label row rather than add a twin.
		if _, err := s.exec(ctx, "DELETE FROM transport WHERE domain = ?", a); err != nil {
			return fmt.Errorf("store: set transport %s: %w", d, err)
		}
	}
	if _, err := s.exec(ctx, q, d, t.String()); err != nil {
		return fmt.Errorf("store: set transport %s: %w", d, err)
	}
	return nil
}

// RemoveTransport removes the transport entry of domain.
func (s *SQL) RemoveTransport(ctx context.Context, domain string) error {
	d, err := ParseDomain(domain)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, "DELETE FROM transport WHERE domain IN (?, ?)", d, DomainASCII(d))
	return affected(res, err, "transport "+d)
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

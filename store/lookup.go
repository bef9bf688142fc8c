package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// nKeys is the number of spellings addressKeys and sourceKeys return.
const nKeys = 4

// addressKeys returns the spellings an address may be stored under: the
// domain in U-labels (what this package writes) or in A-labels (what a
// hand-written seed row may hold), each with the local part as given and
// in lower case. The lower-case forms find a stored lower-case non-ASCII
// local part on SQLite, whose NOCASE collation folds ASCII only.
func addressKeys(a Address) []any {
	l := Address{Local: strings.ToLower(a.Local), Domain: a.Domain}
	return []any{a.String(), a.ASCII(), l.String(), l.ASCII()}
}

// placeholders returns "(?, ?, …)" with n marks.
func placeholders(n int) string {
	return "(?" + strings.Repeat(", ?", n-1) + ")"
}

// cached runs lookup through the cache when there is one. Lookups that
// fail with anything but ErrNotFound are not cached.
func (s *SQL) cached(key string, lookup func() (any, error)) (any, error) {
	if s.cache == nil {
		return lookup()
	}
	v, ok, gen := s.cache.get(key)
	if ok {
		if v == nil {
			return nil, ErrNotFound
		}
		return v, nil
	}
	v, err := lookup()
	switch {
	case err == nil:
		s.cache.put(key, v, gen)
	case errors.Is(err, ErrNotFound):
		s.cache.put(key, nil, gen)
	}
	return v, err
}

// IsLocalDomain reports whether domain is in the domains table. A name
// that is not a valid domain is not local.
func (s *SQL) IsLocalDomain(ctx context.Context, domain string) (bool, error) {
	d, err := ParseDomain(domain)
	if err != nil {
		return false, nil
	}
	_, err = s.cached("d:"+d, func() (any, error) {
		var got string
		row, err := s.queryRow(ctx, "SELECT domain FROM domains WHERE domain", d, DomainASCII(d))
		if err != nil {
			return nil, err
		}
		err = row.Scan(&got)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !sameDomain(got, d)) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("store: domain %s: %w", d, err)
		}
		return true, nil
	})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// LookupUser returns the user stored under address, matched
// case-insensitively: on SQLite, non-ASCII letters of a local part match
// in any case only when stored in lower case (its NOCASE folds ASCII);
// on MySQL, as the column's _ci collation folds case, and never across
// other differences the collation ignores ("jose" is not "josé"). The
// result is the caller's to modify. An address that does not
// parse is reported as an error matching both ErrNotFound and
// *AddressError.
func (s *SQL) LookupUser(ctx context.Context, address string) (*User, error) {
	a, err := ParseAddress(address)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	v, err := s.cached("u:"+a.Key(), func() (any, error) {
		row, err := s.queryRow(ctx, "SELECT "+userColumns+" FROM users WHERE email", addressKeys(a)...)
		if err != nil {
			return nil, err
		}
		u, err := scanUser(row)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !sameAddress(u.Address, a)) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("store: user %s: %w", a, err)
		}
		return u, nil
	})
	if err != nil {
		return nil, err
	}
	u := *v.(*User)
	return &u, nil
}

// sameDomain reports whether the stored domain is the normalised
// domain d.
func sameDomain(stored, d string) bool {
	n, err := ParseDomain(stored)
	return err == nil && n == d
}

// sameAddress reports whether the stored address is a, compared as Key
// does.
func sameAddress(stored string, a Address) bool {
	b, err := ParseAddress(stored)
	return err == nil && b.Key() == a.Key()
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

func scanUser(row rowScanner) (*User, error) {
	var (
		email, password, maildir string
		qb, qm, disabled         int64
		created, updated         int64
	)
	if err := row.Scan(&email, &password, &maildir, &qb, &qm, &disabled, &created, &updated); err != nil {
		return nil, err
	}
	return newUser(email, password, maildir, qb, qm, disabled, created, updated), nil
}

// newUser builds a User from a users row.
func newUser(email, password, maildir string, qb, qm, disabled, created, updated int64) *User {
	u := &User{
		Address:       email,
		PasswordHash:  password,
		Maildir:       maildir,
		QuotaBytes:    qb,
		QuotaMessages: qm,
		Disabled:      disabled != 0,
	}
	if a, err := ParseAddress(email); err == nil {
		u.Address = a.String()
		if maildir == "" {
			u.Maildir = DefaultMaildir(a)
		}
	}
	if created != 0 {
		u.Created = time.Unix(created, 0).UTC()
	}
	if updated != 0 {
		u.Updated = time.Unix(updated, 0).UTC()
	}
	return u
}

// DefaultMaildir is the Maildir path of a user whose maildir column is
// empty: "<domain>/<local>/Maildir" relative to the Maildir base, in
// lower case, which is where the seed's Dovecot (mail_location =
// maildir:/home/vmail/%d/%n/Maildir, usernames lower-cased by its
// default auth_username_format) keeps it. Characters that would make a
// path element other than a plain name ("/", "\", NUL, a leading dot) are
// percent-escaped; "%" itself never appears in an accepted address.
func DefaultMaildir(a Address) string {
	return pathElem(strings.ToLower(a.Domain)) + "/" + pathElem(strings.ToLower(a.Local)) + "/Maildir"
}

func pathElem(s string) string {
	if s == "" {
		return "%00"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '/' || c == '\\' || c == 0 || (c == '.' && i == 0) {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Forwardings returns the destinations of the forwarding whose source is
// source: an address, or "@domain" for a catch-all. The stored list is
// split at commas and white space, as Postfix reads it.
func (s *SQL) Forwardings(ctx context.Context, source string) ([]string, error) {
	keys, key, err := sourceKeys(source)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	v, err := s.cached("f:"+key, func() (any, error) {
		var src, dest string
		row, err := s.queryRow(ctx, "SELECT source, destination FROM forwardings WHERE source", keys...)
		if err != nil {
			return nil, err
		}
		err = row.Scan(&src, &dest)
		if err == nil {
			if _, got, perr := sourceKeys(src); perr != nil || got != key {
				err = sql.ErrNoRows
			}
		}
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("store: forwarding %s: %w", source, err)
		}
		return splitDestinations(dest), nil
	})
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.([]string)), nil
}

// sourceKeys normalises a forwarding source and returns its stored
// spellings (nKeys of them) and its comparison key, which is also the
// form this package stores.
func sourceKeys(source string) (keys []any, key string, err error) {
	if d, ok := strings.CutPrefix(source, "@"); ok {
		dom, err := ParseDomain(d)
		if err != nil {
			return nil, "", err
		}
		u, a := "@"+dom, "@"+DomainASCII(dom)
		return []any{u, a, u, a}, u, nil
	}
	a, err := ParseAddress(source)
	if err != nil {
		return nil, "", err
	}
	return addressKeys(a), a.Key(), nil
}

func splitDestinations(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\r' || r == '\n'
	})
}

// Transport returns the transport(5) spec stored for domain.
func (s *SQL) Transport(ctx context.Context, domain string) (string, error) {
	d, err := ParseDomain(domain)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	v, err := s.cached("t:"+d, func() (any, error) {
		var got, spec string
		row, err := s.queryRow(ctx, "SELECT domain, transport FROM transport WHERE domain", d, DomainASCII(d))
		if err != nil {
			return nil, err
		}
		err = row.Scan(&got, &spec)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !sameDomain(got, d)) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("store: transport %s: %w", d, err)
		}
		return spec, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

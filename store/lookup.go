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

// nKeys bounds the number of spellings addressKeys and sourceKeys
// return.
const nKeys = 4

// addressKeys returns the spellings an address may be stored under, each
// once. Keys are compared case-insensitively for ASCII letters by every
// dialect (SQLite's NOCASE, MySQL's _ci collations), so spellings that
// differ only there are given once. They are: the canonical form (local
// part case-folded, see storedEmail), with the domain in U-labels (what
// this package writes) and in A-labels (what a hand-written row may
// hold); and when the local part has non-ASCII letters in another case,
// the address as given, in both forms, for rows written by hand in that
// case.
func addressKeys(a Address) keyList {
	var keys keyList
	ascii := DomainASCII(a.Domain)
	fold := FoldLocal(a.Local)
	for i, l := range [2]string{fold, a.Local} {
		if i == 1 && asciiFoldEqual(l, fold) {
			break
		}
		q := quoteLocal(l)
		keys.add(q + "@" + a.Domain)
		if ascii != a.Domain {
			keys.add(q + "@" + ascii)
		}
	}
	return keys
}

// keyList is a short list of keys, without two that are equal but for
// ASCII case.
type keyList struct {
	k [nKeys]string
	n int
}

func (l *keyList) add(k string) {
	for _, x := range l.k[:l.n] {
		if asciiFoldEqual(x, k) {
			return
		}
	}
	l.k[l.n] = k
	l.n++
}

func (l *keyList) list() []string { return l.k[:l.n] }

// asciiFoldEqual reports whether a and b are equal when ASCII letters
// are compared case-insensitively and all else byte by byte, as SQLite's
// NOCASE compares.
func asciiFoldEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// storedEmail returns what the users table holds for a: the email
// column, and the display_email column (empty when it would repeat email).
//
// SQLite's NOCASE folds ASCII letters only. So that non-ASCII local
// parts match in any case on SQLite as they do on MySQL (whose _ci
// collations fold all of Unicode), the email column holds the address
// as typed only when it differs from its canonical form (local part
// case-folded, Address.Canonical) in ASCII letters alone, which covers
// every ASCII address; otherwise email holds the canonical form
// ("josé@example.org") and display_email the address as typed
// ("JOSÉ@example.org"), which User.Address returns. This keeps the
// file a plain SQLite database that the sqlite3 shell, backups and
// other programs read and write, as administrators of the seed did with
// its tables. A key column collated by a Go function
// (modernc.org/sqlite's RegisterCollationUtf8) would not: a program
// without that function cannot use the table at all (with the sqlite3
// shell, SELECT, INSERT, UPDATE, PRAGMA integrity_check and VACUUM on
// it all fail with "no such collation sequence"). Folded keys are also
// what Postfix expects of its lookup tables, which it queries with
// case-folded keys. A row written by hand should do the same: an
// address whose non-ASCII letters are written in another case than the
// canonical one is found only when looked up in that very case.
func storedEmail(a Address) (email, display string) {
	typed := a.String()
	c := a.Canonical().String()
	if asciiFoldEqual(typed, c) {
		return typed, ""
	}
	return c, typed
}

// cached runs lookup through the cache when there is one, bounded by
// the query timeout. Lookups that fail with anything but ErrNotFound are
// not cached.
func (s *SQL) cached(ctx context.Context, key string, lookup func(context.Context) (any, error)) (any, error) {
	if s.cache == nil {
		return bounded(s, ctx, lookup)
	}
	v, ok, gen := s.cache.get(key)
	if ok {
		if v == nil {
			return nil, ErrNotFound
		}
		return v, nil
	}
	v, err := bounded(s, ctx, lookup)
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
	_, err = s.cached(ctx, "d:"+d, func(ctx context.Context) (any, error) {
		var got string
		dk := domainKeys(d)
		row, err := s.queryRow(ctx, stmtDomain, dk.list())
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

// LookupUser returns the user stored under address, matched with the
// local part case-folded (Address.Key, FoldLocal) on both dialects, and
// never across other differences a MySQL collation ignores ("jose" is
// not "josé"). The result is the caller's to modify. An address that does not
// parse is reported as an error matching both ErrNotFound and
// *AddressError.
func (s *SQL) LookupUser(ctx context.Context, address string) (*User, error) {
	a, err := ParseAddress(address)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if s.cache == nil {
		return bounded(s, ctx, func(ctx context.Context) (*User, error) { return s.lookupUser(ctx, a) })
	}
	v, err := s.cached(ctx, "u:"+a.Key(), func(ctx context.Context) (any, error) { return s.lookupUser(ctx, a) })
	if err != nil {
		return nil, err
	}
	u := *v.(*User)
	return &u, nil
}

// lookupUser is LookupUser without the cache.
func (s *SQL) lookupUser(ctx context.Context, a Address) (*User, error) {
	keys := addressKeys(a)
	row, err := s.queryRow(ctx, stmtUser, keys.list())
	if err != nil {
		return nil, err
	}
	var ur userRow
	err = row.Scan(ur.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: user %s: %w", a, err)
	}
	// A row stored under the canonical spelling of an unquoted local
	// part is the address: no need to parse it again.
	if canon := keys.k[0]; ur.email == canon && ur.display == "" && canon[0] != '"' {
		return ur.userAt(Address{Local: canon[:len(canon)-len(a.Domain)-1], Domain: a.Domain}, canon), nil
	}
	if u := ur.user(a.Key()); u != nil {
		return u, nil
	}
	return nil, ErrNotFound
}

// sameDomain reports whether the stored domain is the normalised
// domain d.
func sameDomain(stored, d string) bool {
	n, err := ParseDomain(stored)
	return err == nil && n == d
}

// userRow is a users row as userColumns reads it.
type userRow struct {
	email, display, password, maildir  string
	qb, qm, disabled, created, updated int64
}

// dest returns the Scan destinations of userColumns.
func (r *userRow) dest() []any {
	return []any{&r.email, &r.display, &r.password, &r.maildir, &r.qb, &r.qm, &r.disabled, &r.created, &r.updated}
}

// user builds the User of the row. When key is not "", it returns nil
// unless the row's address has that Key: the collation found a row that
// is not the address looked up.
func (r *userRow) user(key string) *User {
	a, err := ParseAddress(r.email)
	if err != nil {
		if key != "" {
			return nil
		}
		u := r.userAt(Address{}, r.email)
		u.Maildir = r.maildir
		return u
	}
	if key != "" && a.Key() != key {
		return nil
	}
	// display_email is the address as typed when email holds its
	// canonical form (storedEmail); a value that is not the same
	// address is ignored.
	if r.display != "" {
		if d, err := ParseAddress(r.display); err == nil && d.Key() == a.Key() {
			a = d
		}
	}
	return r.userAt(a, a.String())
}

// userAt builds the User of the row, whose address is a, as a string
// str.
func (r *userRow) userAt(a Address, str string) *User {
	u := &User{
		Address:       str,
		PasswordHash:  r.password,
		Maildir:       r.maildir,
		QuotaBytes:    r.qb,
		QuotaMessages: r.qm,
		Disabled:      r.disabled != 0,
	}
	if r.maildir == "" {
		u.Maildir = DefaultMaildir(a)
	}
	if r.created != 0 {
		u.Created = time.Unix(r.created, 0).UTC()
	}
	if r.updated != 0 {
		u.Updated = time.Unix(r.updated, 0).UTC()
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
	if s[0] != '.' && !strings.ContainsAny(s, "/\\\x00") {
		return s
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
	v, err := s.cached(ctx, "f:"+key, func(ctx context.Context) (any, error) {
		var src, dest string
		row, err := s.queryRow(ctx, stmtForwarding, keys.list())
		if err != nil {
			return nil, err
		}
		err = row.Scan(&src, &dest)
		if err == nil {
			if got, perr := sourceKey(src); perr != nil || got != key {
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
// spellings (at most nKeys, see addressKeys), the canonical one first,
// and its comparison key.
func sourceKeys(source string) (keys keyList, key string, err error) {
	if d, ok := strings.CutPrefix(source, "@"); ok {
		dom, err := ParseDomain(d)
		if err != nil {
			return keys, "", err
		}
		keys = domainKeys(dom)
		for i, k := range keys.list() {
			keys.k[i] = "@" + k
		}
		return keys, keys.k[0], nil
	}
	a, err := ParseAddress(source)
	if err != nil {
		return keys, "", err
	}
	return addressKeys(a), a.Key(), nil
}

// sourceKey returns the comparison key of a forwarding source: the
// Address.Key of an address, "@" and the normalised domain of a
// catch-all.
func sourceKey(source string) (string, error) {
	if d, ok := strings.CutPrefix(source, "@"); ok {
		dom, err := ParseDomain(d)
		return "@" + dom, err
	}
	a, err := ParseAddress(source)
	return a.Key(), err
}

// domainKeys returns the spellings a normalised domain may be stored
// under: its U-labels and, when different, its A-labels.
func domainKeys(d string) keyList {
	keys := keyList{k: [nKeys]string{d}, n: 1}
	keys.add(DomainASCII(d))
	return keys
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
	v, err := s.cached(ctx, "t:"+d, func(ctx context.Context) (any, error) {
		var got, spec string
		dk := domainKeys(d)
		row, err := s.queryRow(ctx, stmtTransport, dk.list())
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

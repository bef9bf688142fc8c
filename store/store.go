// Package store is mailagent's directory: virtual domains, users,
// forwardings (aliases and catch-alls) and the transport table, and the
// recipient resolution built on them.
//
// The read side (Directory) is what servers consult on every RCPT and
// login; the admin side (Admin) is what administration tools change.
// The SQL backend keeps both in the seed installation's four tables
// (domains, forwardings, users, transport), in SQLite, MySQL/MariaDB or
// PostgreSQL, and migrates a database made by the seed's SQL in place
// (on MySQL and PostgreSQL only when asked, see Options.Migrate).
//
// Addresses follow RFC 5321 (syntax and limits, section 4.1.2 and
// 4.5.3.1), RFC 5322 (atoms), RFC 6531 (UTF-8 local parts, SMTPUTF8),
// RFC 5890-5893 with UTS #46 (IDNA 2008 domains) and RFC 5233
// (subaddressing). Local parts are matched with Unicode simple case
// folding (FoldLocal) on every SQL dialect. Resolution follows
// Postfix's virtual(5) lookup order.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a domain, user, forwarding or transport
// does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrExists is returned when adding something that already exists.
var ErrExists = errors.New("store: already exists")

// User is one mailbox owner of a local domain.
type User struct {
	// Address is the normalised address (lower-case domain in Unicode
	// form, local part as typed when the user was added or as the
	// row holds it).
	Address string
	// PasswordHash is the stored hash with its scheme, as auth reads it
	// ("{ARGON2ID}$argon2id$...", "$6$...", a 13-character DES crypt...).
	PasswordHash string
	// Maildir is the user's Maildir path relative to the Maildir base
	// (default "<domain>/<local>/Maildir"); absolute when configured so.
	Maildir string
	// QuotaBytes and QuotaMessages limit the mailbox; 0 means no limit.
	QuotaBytes    int64
	QuotaMessages int64
	// Disabled users cannot log in and do not receive mail.
	Disabled bool
	// Created and Updated are maintained by the backend.
	Created, Updated time.Time
}

// Directory is the read side of the directory, used by servers.
type Directory interface {
	// IsLocalDomain reports whether mail for domain is ours.
	IsLocalDomain(ctx context.Context, domain string) (bool, error)
	// LookupUser returns the user with the given address, or ErrNotFound.
	LookupUser(ctx context.Context, address string) (*User, error)
	// Forwardings returns the destinations of the forwarding whose source
	// is exactly source (an address, or "@domain" for a catch-all), or
	// ErrNotFound.
	Forwardings(ctx context.Context, source string) ([]string, error)
	// Transport returns the transport spec for domain (Postfix
	// transport(5) syntax, e.g. "lmtp:127.0.0.1:24"), or ErrNotFound.
	Transport(ctx context.Context, domain string) (string, error)
}

// Admin is the write side of the directory, used by administration tools.
// Passwords are set as hashes: hashing belongs to package auth.
type Admin interface {
	Directory

	AddDomain(ctx context.Context, domain string) error
	RemoveDomain(ctx context.Context, domain string) error
	ListDomains(ctx context.Context) ([]string, error)

	AddUser(ctx context.Context, u *User) error
	RemoveUser(ctx context.Context, address string) error
	ListUsers(ctx context.Context, domain string) ([]*User, error)
	SetPassword(ctx context.Context, address, hash string) error
	SetDisabled(ctx context.Context, address string, disabled bool) error
	SetQuota(ctx context.Context, address string, bytes, messages int64) error

	AddForwarding(ctx context.Context, source string, destinations []string) error
	RemoveForwarding(ctx context.Context, source string) error
	ListForwardings(ctx context.Context) (map[string][]string, error)

	SetTransport(ctx context.Context, domain, spec string) error
	RemoveTransport(ctx context.Context, domain string) error
	ListTransports(ctx context.Context) (map[string]string, error)
}

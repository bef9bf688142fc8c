package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
)

// MaxHostLength bounds a host column: a host name or address with a port.
const MaxHostLength = 255

// Home returns the backend that holds address's mailbox, as a proxy in
// front of several nodes routes the user's sessions and deliveries: the
// user's host column, else its domain's, else "" (the proxy chooses by
// consistent hashing). An unknown user whose domain has a host gets the
// domain's; an unknown user of a domain without one gets "" and no
// error, so that a proxy can still pass the login on.
func (s *SQL) Home(ctx context.Context, address string) (string, error) {
	a, err := ParseAddress(address)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	v, err := s.cached(ctx, "h:"+a.Key(), func(ctx context.Context) (any, error) {
		ak, dk := addressKeys(a), domainKeys(a.Domain)
		host, err := s.hostOf(ctx, stmtUserHost, ak.list(), func(stored string) bool {
			sa, err := ParseAddress(stored)
			return err == nil && sa.Key() == a.Key()
		})
		if err != nil || host != "" {
			return host, err
		}
		return s.hostOf(ctx, stmtDomainHost, dk.list(), isDomain(a.Domain))
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// hostOf reads the host of the row the lookup statement kind finds by
// keys, "" when there is none or match refuses its key.
func (s *SQL) hostOf(ctx context.Context, kind uint8, keys []string, match func(string) bool) (string, error) {
	row, err := s.queryRow(ctx, kind, keys)
	if err != nil {
		return "", err
	}
	var key, host string
	err = row.Scan(&key, &host)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !match(key)) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: host of %s: %w", keys[0], err)
	}
	return host, nil
}

// SetUserHost sets the backend that holds a user's mailbox (Home); ""
// clears it, leaving the domain's. The user is matched as LookupUser
// matches it.
func (s *SQL) SetUserHost(ctx context.Context, address, host string) error {
	a, err := ParseAddress(address)
	if err != nil {
		return err
	}
	if err := checkHost(host); err != nil {
		return err
	}
	return s.writeUser(ctx, a, "UPDATE users SET host = ?", host)
}

// SetDomainHost sets the backend of the users of domain that have no
// host of their own; "" clears it.
func (s *SQL) SetDomainHost(ctx context.Context, domain, host string) error {
	d, err := ParseDomain(domain)
	if err != nil {
		return err
	}
	if err := checkHost(host); err != nil {
		return err
	}
	dk := domainKeys(d)
	return s.writeRows(ctx, "domain "+d, "domains", "domain", dk.list(), isDomain(d), "UPDATE domains SET host = ?", host)
}

// checkHost accepts "", a host name or an IP address, with or without a
// port: what a proxy dials, never anything that could smuggle another
// value into its configuration or logs.
func checkHost(h string) error {
	if h == "" {
		return nil
	}
	bad := fmt.Errorf("store: host %q: want a host name or address, with an optional port", h)
	if len(h) > MaxHostLength {
		return bad
	}
	name := h
	if host, port, err := net.SplitHostPort(h); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return bad
		}
		name = host
	}
	if net.ParseIP(name) != nil {
		return nil
	}
	if name == "" || strings.Trim(strings.ToLower(name), "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
		return bad
	}
	return nil
}

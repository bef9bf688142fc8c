package dnsauth

import (
	"context"
	"errors"
	"net"
	"time"
)

// Resolver is the DNS interface every mailagent package looks names up
// through. *net.Resolver satisfies it; MockResolver is an in-memory
// implementation for tests. Errors follow net's conventions: a
// *net.DNSError with IsNotFound set means the name (or the record type)
// does not exist, IsTemporary or IsTimeout a failure worth retrying.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	LookupCNAME(ctx context.Context, host string) (string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// NewServerResolver returns a resolver that sends every query to the DNS
// server at addr ("host:port", or a bare host for port 53) instead of the
// servers in /etc/resolv.conf: a local validating resolver, or the server of
// a test network. It uses Go's own stub resolver so the setting holds on
// every platform; the network (udp, or tcp for truncated answers) is the one
// the stub asks for.
func NewServerResolver(addr string) *net.Resolver {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "53")
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// DefaultLookupTimeout bounds one DNS lookup made through a resolver
// returned by WithTimeout when no other value is given.
const DefaultLookupTimeout = 10 * time.Second

// WithTimeout returns a Resolver that bounds every lookup made through r to
// d (DefaultLookupTimeout when d <= 0), on top of any deadline the caller's
// context already carries, so that a slow or hostile name server cannot
// stall an SMTP session.
func WithTimeout(r Resolver, d time.Duration) Resolver {
	if d <= 0 {
		d = DefaultLookupTimeout
	}
	return timeoutResolver{r: r, d: d}
}

type timeoutResolver struct {
	r Resolver
	d time.Duration
}

func (t timeoutResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.r.LookupTXT(ctx, name)
}

func (t timeoutResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.r.LookupMX(ctx, name)
}

func (t timeoutResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.r.LookupIPAddr(ctx, host)
}

func (t timeoutResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.r.LookupAddr(ctx, addr)
}

func (t timeoutResolver) LookupCNAME(ctx context.Context, host string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.r.LookupCNAME(ctx, host)
}

// isNotFound reports whether err says the name or the record type does not
// exist, as opposed to a failure worth retrying.
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// isTemporary reports whether err is a DNS failure worth retrying later
// (SERVFAIL, timeout, cancelled context).
func isTemporary(err error) bool {
	if err == nil {
		return false
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.IsTemporary || de.IsTimeout
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

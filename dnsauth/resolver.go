package dnsauth

import (
	"context"
	"net"
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

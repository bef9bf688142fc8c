package dnsauth

import (
	"context"
	"net"
	"strings"
	"sync"
)

// MockResolver is a map-based Resolver for tests: records are looked up by
// exact, case-insensitive name (a trailing dot is ignored). A name absent
// from every map answers NXDOMAIN. Fail injects an error for a name,
// whatever the record type; use NewTempError, NewTimeoutError or
// NewNotFoundError to build one. The maps may be filled before use or
// changed later under Lock/Unlock.
type MockResolver struct {
	sync.Mutex

	TXT   map[string][]string  // name → TXT strings (each already joined)
	MX    map[string][]*net.MX // name → MX records
	IP    map[string][]net.IP  // host → A and AAAA addresses
	PTR   map[string][]string  // IP address text → host names
	CNAME map[string]string    // host → canonical name
	Fail  map[string]error     // name → error returned for every lookup
}

// NewTempError returns a temporary DNS failure (SERVFAIL) for name.
func NewTempError(name string) error {
	return &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
}

// NewTimeoutError returns a DNS timeout for name.
func NewTimeoutError(name string) error {
	return &net.DNSError{Err: "i/o timeout", Name: name, IsTimeout: true, IsTemporary: true}
}

// NewNotFoundError returns an NXDOMAIN for name.
func NewNotFoundError(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func mockKey(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// lookup normalises name and returns the injected failure for it, if any.
// The caller holds the lock.
func (m *MockResolver) lookup(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", &net.DNSError{Err: err.Error(), Name: name, IsTimeout: true, IsTemporary: true}
	}
	k := mockKey(name)
	if err, ok := m.Fail[k]; ok {
		return k, err
	}
	return k, nil
}

// LookupTXT implements Resolver.
func (m *MockResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	m.Lock()
	defer m.Unlock()
	k, err := m.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	if v, ok := m.TXT[k]; ok {
		return append([]string(nil), v...), nil
	}
	return nil, NewNotFoundError(name)
}

// LookupMX implements Resolver.
func (m *MockResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	m.Lock()
	defer m.Unlock()
	k, err := m.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	if v, ok := m.MX[k]; ok {
		out := make([]*net.MX, len(v))
		for i, mx := range v {
			c := *mx
			out[i] = &c
		}
		return out, nil
	}
	return nil, NewNotFoundError(name)
}

// LookupIPAddr implements Resolver.
func (m *MockResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	m.Lock()
	defer m.Unlock()
	k, err := m.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(k); ip != nil {
		return []net.IPAddr{{IP: ip}}, nil
	}
	if v, ok := m.IP[k]; ok {
		out := make([]net.IPAddr, len(v))
		for i, ip := range v {
			out[i] = net.IPAddr{IP: ip}
		}
		return out, nil
	}
	return nil, NewNotFoundError(host)
}

// LookupAddr implements Resolver. addr is an IP address in text form; the
// map is keyed by the address's canonical text (net.IP.String).
func (m *MockResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	m.Lock()
	defer m.Unlock()
	if ip := net.ParseIP(addr); ip != nil {
		addr = ip.String()
	}
	k, err := m.lookup(ctx, addr)
	if err != nil {
		return nil, err
	}
	if v, ok := m.PTR[k]; ok {
		return append([]string(nil), v...), nil
	}
	return nil, NewNotFoundError(addr)
}

// LookupCNAME implements Resolver. Like net.Resolver, a name with records
// but no CNAME answers with the name itself (fully qualified).
func (m *MockResolver) LookupCNAME(ctx context.Context, host string) (string, error) {
	m.Lock()
	defer m.Unlock()
	k, err := m.lookup(ctx, host)
	if err != nil {
		return "", err
	}
	if v, ok := m.CNAME[k]; ok {
		return strings.TrimSuffix(v, ".") + ".", nil
	}
	if m.TXT[k] != nil || m.MX[k] != nil || m.IP[k] != nil {
		return k + ".", nil
	}
	return "", NewNotFoundError(host)
}

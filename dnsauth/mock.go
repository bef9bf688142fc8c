package dnsauth

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
)

// MockResolver is a map-based Resolver for tests: records are looked up by
// exact, case-insensitive name (a trailing dot is ignored). A name absent
// from every map answers NXDOMAIN. Fail injects an error for a name,
// whatever the record type; use NewTempError, NewTimeoutError or
// NewNotFoundError to build one. Hang makes lookups of a name block until
// the caller's context ends, the way an unanswering server does. Lookups of
// TXT, MX and addresses follow CNAME like a recursive resolver (a loop is a
// SERVFAIL). The maps may be filled before use, with the Add methods, or
// changed later under Lock/Unlock.
type MockResolver struct {
	sync.Mutex

	TXT   map[string][]string   // name → TXT strings (each already joined)
	MX    map[string][]*net.MX  // name → MX records
	IP    map[string][]net.IP   // host → A and AAAA addresses
	PTR   map[string][]string   // IP address text → host names
	CNAME map[string]string     // host → canonical name
	SRV   map[string][]*net.SRV // "_service._proto.name" → SRV records
	Fail  map[string]error      // name → error returned for every lookup
	Hang  map[string]bool       // name → lookups block until ctx is done

	queries map[string]int // name → number of lookups, for Queries
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

// maxMockCNAME bounds CNAME chains, as recursive resolvers do.
const maxMockCNAME = 8

// Queries returns how many lookups of name (any type) were made, or of all
// names when name is "".
func (m *MockResolver) Queries(name string) int {
	m.Lock()
	defer m.Unlock()
	if name != "" {
		return m.queries[mockKey(name)]
	}
	n := 0
	for _, c := range m.queries {
		n += c
	}
	return n
}

// lookup counts the query, applies Hang and Fail, and follows CNAMEs when
// follow is set, returning the name whose records answer. It is called with
// the lock held and may release it while hanging.
func (m *MockResolver) lookup(ctx context.Context, name string, follow bool) (string, error) {
	k := mockKey(name)
	if m.queries == nil {
		m.queries = map[string]int{}
	}
	m.queries[k]++
	for i := 0; ; i++ {
		if m.Hang[k] {
			m.Unlock()
			<-ctx.Done()
			m.Lock()
		}
		if err := ctx.Err(); err != nil {
			return "", &net.DNSError{Err: err.Error(), Name: name, IsTimeout: true, IsTemporary: true}
		}
		if err, ok := m.Fail[k]; ok {
			return k, err
		}
		c, ok := m.CNAME[k]
		if !follow || !ok {
			return k, nil
		}
		if i == maxMockCNAME {
			return "", &net.DNSError{Err: "CNAME loop", Name: name, IsTemporary: true}
		}
		k = mockKey(c)
	}
}

// LookupTXT implements Resolver.
func (m *MockResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	m.Lock()
	defer m.Unlock()
	k, err := m.lookup(ctx, name, true)
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
	k, err := m.lookup(ctx, name, true)
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
	k, err := m.lookup(ctx, host, true)
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
	k, err := m.lookup(ctx, addr, false)
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
	k, err := m.lookup(ctx, host, false)
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

// AddTXT appends TXT records to name.
func (m *MockResolver) AddTXT(name string, txt ...string) {
	m.Lock()
	defer m.Unlock()
	if m.TXT == nil {
		m.TXT = map[string][]string{}
	}
	k := mockKey(name)
	m.TXT[k] = append(m.TXT[k], txt...)
}

// AddMX appends an MX record for name naming host.
func (m *MockResolver) AddMX(name, host string, pref uint16) {
	m.Lock()
	defer m.Unlock()
	if m.MX == nil {
		m.MX = map[string][]*net.MX{}
	}
	k := mockKey(name)
	m.MX[k] = append(m.MX[k], &net.MX{Host: strings.TrimSuffix(host, ".") + ".", Pref: pref})
}

// AddIP appends A or AAAA records to host.
func (m *MockResolver) AddIP(host string, ips ...net.IP) {
	m.Lock()
	defer m.Unlock()
	if m.IP == nil {
		m.IP = map[string][]net.IP{}
	}
	k := mockKey(host)
	m.IP[k] = append(m.IP[k], ips...)
}

// AddPTR appends reverse names for ip.
func (m *MockResolver) AddPTR(ip net.IP, names ...string) {
	m.Lock()
	defer m.Unlock()
	if m.PTR == nil {
		m.PTR = map[string][]string{}
	}
	k := ip.String()
	for _, n := range names {
		m.PTR[k] = append(m.PTR[k], strings.TrimSuffix(n, ".")+".")
	}
}

// AddCNAME makes host an alias of target.
func (m *MockResolver) AddCNAME(host, target string) {
	m.Lock()
	defer m.Unlock()
	if m.CNAME == nil {
		m.CNAME = map[string]string{}
	}
	m.CNAME[mockKey(host)] = target
}

// AddSRV appends an SRV record to name ("_service._proto.domain").
func (m *MockResolver) AddSRV(name string, srv *net.SRV) {
	m.Lock()
	defer m.Unlock()
	if m.SRV == nil {
		m.SRV = map[string][]*net.SRV{}
	}
	k := mockKey(name)
	m.SRV[k] = append(m.SRV[k], srv)
}

// LookupSRV answers like net.Resolver.LookupSRV, for code that finds
// services (RFC 6186) through a resolver with this method.
func (m *MockResolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	m.Lock()
	defer m.Unlock()
	owner := name
	if service != "" || proto != "" {
		owner = "_" + service + "._" + proto + "." + name
	}
	k, err := m.lookup(ctx, owner, false)
	if err != nil {
		return "", nil, err
	}
	if v := m.SRV[k]; len(v) > 0 {
		return k + ".", append([]*net.SRV(nil), v...), nil
	}
	return "", nil, NewNotFoundError(owner)
}

// AddRecord loads one record, as Records returns it, so that tests can
// publish exactly what an administrator would.
func (m *MockResolver) AddRecord(r Record) error {
	switch r.Type {
	case "TXT":
		m.AddTXT(r.Name, r.Value)
	case "MX":
		var pref uint16
		var host string
		if _, err := fmt.Sscanf(r.Value, "%d %s", &pref, &host); err != nil {
			return fmt.Errorf("dnsauth: MX record %q: %w", r.Value, err)
		}
		m.AddMX(r.Name, host, pref)
	case "A", "AAAA":
		ip := net.ParseIP(r.Value)
		if ip == nil {
			return fmt.Errorf("dnsauth: %s record %q: not an address", r.Type, r.Value)
		}
		m.AddIP(r.Name, ip)
	case "PTR":
		ip := ReverseNameIP(r.Name)
		if ip == nil {
			return fmt.Errorf("dnsauth: PTR owner %q: not a reverse name", r.Name)
		}
		m.AddPTR(ip, r.Value)
	case "CNAME":
		m.AddCNAME(r.Name, r.Value)
	case "SRV":
		// "priority weight port target"; a target of "." (or, with its
		// dot trimmed, none) says the service is not offered.
		var srv net.SRV
		f := strings.Fields(r.Value)
		if len(f) < 3 || len(f) > 4 {
			return fmt.Errorf("dnsauth: SRV record %q: want priority, weight, port and target", r.Value)
		}
		if _, err := fmt.Sscanf(strings.Join(f[:3], " "), "%d %d %d", &srv.Priority, &srv.Weight, &srv.Port); err != nil {
			return fmt.Errorf("dnsauth: SRV record %q: %w", r.Value, err)
		}
		srv.Target = "."
		if len(f) == 4 {
			srv.Target = f[3]
		}
		m.AddSRV(r.Name, &srv)
	default:
		return fmt.Errorf("dnsauth: record type %q not supported by MockResolver", r.Type)
	}
	return nil
}

package mailtest

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/mailagent/mailagent/dnsauth"
)

// Network is the pretend Internet that Servers share: one mock DNS, and a
// loopback address (127.0.0.2, 127.0.0.3, ...) per server, so that MX
// lookups, SPF, iprev and DMARC see each server as a distinct host. Every
// connection stays on this machine.
type Network struct {
	// Resolver is the shared DNS. Servers publish their records in it;
	// tests may add or break records.
	Resolver *dnsauth.MockResolver

	mu    sync.Mutex
	next  int
	mx    map[string]string // host IP → the address its MX server listens on
	names map[string]bool   // domains in use
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{Resolver: &dnsauth.MockResolver{}, next: 2, mx: map[string]string{}, names: map[string]bool{}}
}

// allocate reserves a host address for domain's server.
func (n *Network) allocate(domain string) (net.IP, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.names[domain] {
		return nil, fmt.Errorf("mailtest: domain %s already has a server on this network", domain)
	}
	if n.next > 254 {
		return nil, fmt.Errorf("mailtest: network full")
	}
	n.names[domain] = true
	ip := net.IPv4(127, 0, 0, byte(n.next)).To4()
	n.next++
	return ip, nil
}

func (n *Network) setMX(ip net.IP, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mx[ip.String()] = addr
}

// dialer is the outbound dialer of the server at ip: connections leave from
// ip, and port 25 of a network host reaches that host's MX listener.
type dialer struct {
	n  *Network
	ip net.IP
}

func (d dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if port == "25" {
		d.n.mu.Lock()
		real, ok := d.n.mx[host]
		d.n.mu.Unlock()
		if !ok {
			return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("connection refused (no server at %s)", host)}
		}
		address = real
	}
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: d.ip}}
	return nd.DialContext(ctx, network, address)
}

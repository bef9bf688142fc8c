package connlimit

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/mailagent/mailagent/internal/netaddr"
)

// The limits Acquire can refuse a connection for; a *LimitError wraps
// one of them, so errors.Is tells a server which refusal to send.
var (
	// ErrTotal: the server holds its maximum number of connections.
	ErrTotal = errors.New("connlimit: too many connections")
	// ErrPerClient: the client's network holds its maximum.
	ErrPerClient = errors.New("connlimit: too many connections from the client's network")
)

// LimitError is Acquire's refusal, with the counts at the time for the
// server's log.
type LimitError struct {
	// Err is ErrTotal or ErrPerClient.
	Err error
	// Client is the client's network; not valid (zero) for an address
	// without IP.
	Client netip.Prefix
	// Total is the number of connections the Limiter held, FromClient
	// those from Client.
	Total, FromClient int
}

func (e *LimitError) Error() string {
	if e.Client.IsValid() {
		return fmt.Sprintf("%v (%s: %d of %d)", e.Err, e.Client, e.FromClient, e.Total)
	}
	return fmt.Sprintf("%v (%d)", e.Err, e.Total)
}

// Unwrap returns Err.
func (e *LimitError) Unwrap() error { return e.Err }

// Counter admits and counts connections; *Limiter is one. The servers
// take one in their Options so that several of them, every listener of
// a process, share one limit; an embedder may pass its own.
type Counter interface {
	// Acquire counts a connection from addr, or refuses it with an
	// error (a *LimitError wrapping ErrTotal or ErrPerClient tells the
	// server which busy reply to give). release gives the slot back;
	// it may be called more than once.
	Acquire(addr net.Addr) (release func(), err error)
}

// Or returns c, or when c is nil a new Limiter of max connections and
// perClient from one client network: a server's own limits unless its
// embedder gave it a Counter shared with other servers.
func Or(c Counter, max, perClient int) Counter {
	if c != nil {
		return c
	}
	return New(max, perClient)
}

// Limiter counts open connections against a total and a per-client
// maximum. It is safe for concurrent use; the zero value is not usable,
// New makes one.
type Limiter struct {
	max, perClient int

	mu      sync.Mutex
	total   int
	clients map[netip.Prefix]int
}

// New returns a Limiter admitting at most max connections at once, and
// at most perClient of them from one client network. The limits are
// taken as given: a limit of 0 or less admits nothing, so callers apply
// their defaults first.
func New(max, perClient int) *Limiter {
	return &Limiter{max: max, perClient: perClient, clients: map[netip.Prefix]int{}}
}

// Acquire counts a connection from addr, the connection's RemoteAddr,
// or refuses it with a *LimitError. The returned release gives the slot
// back; it may be called any number of times, only the first counts, so
// that every path closing a connection can call it.
func (l *Limiter) Acquire(addr net.Addr) (release func(), err error) {
	client, keyed := ClientNetwork(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	from := 0
	if keyed {
		from = l.clients[client]
	}
	switch {
	case l.total >= l.max:
		return nil, &LimitError{Err: ErrTotal, Client: client, Total: l.total, FromClient: from}
	case keyed && from >= l.perClient:
		return nil, &LimitError{Err: ErrPerClient, Client: client, Total: l.total, FromClient: from}
	}
	l.total++
	if keyed {
		l.clients[client]++
	}
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			l.release(client, keyed)
		}
	}, nil
}

func (l *Limiter) release(client netip.Prefix, keyed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if keyed {
		// Deleting at zero keeps the map as small as the set of
		// clients connected now, not of every client ever seen.
		if l.clients[client]--; l.clients[client] <= 0 {
			delete(l.clients, client)
		}
	}
}

// Active returns the number of connections held.
func (l *Limiter) Active() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// ActiveFrom returns the number of connections held from addr's client
// network; 0 for an address without IP.
func (l *Limiter) ActiveFrom(addr net.Addr) int {
	client, keyed := ClientNetwork(addr)
	if !keyed {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.clients[client]
}

// ClientNetwork returns the network addr is counted in: its IPv4 address
// as a /32 (an IPv4-mapped IPv6 address counts as the IPv4 one), or the
// /64 of its IPv6 address, zone dropped. It reports false for an address
// without IP, such as a Unix-domain socket's.
func ClientNetwork(addr net.Addr) (netip.Prefix, bool) {
	ip, ok := netaddr.IP(addr)
	if !ok {
		return netip.Prefix{}, false
	}
	bits := 64
	if ip.Is4() {
		bits = 32
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p, true
}

// Package connlimittest helps test connection limits per client network
// with real connections over the loopback, which offers one address per
// family (127.0.0.1, ::1) where such tests need clients of several
// addresses and networks, IPv6 /64s in particular.
//
// It implements no RFC.
package connlimittest

import (
	"net"
	"net/netip"
)

// Listener hands out the connections of the listener it wraps with the
// remote addresses it was given, in order, one per accepted connection;
// once they are used up, connections keep their own. A test that waits
// for each connection's greeting before dialling the next knows which
// address the server sees for it.
type Listener struct {
	net.Listener
	remotes chan net.Addr
}

// NewListener wraps l so that its next accepted connections appear to
// come from remotes, TCP addresses.
func NewListener(l net.Listener, remotes ...netip.AddrPort) *Listener {
	pl := &Listener{Listener: l, remotes: make(chan net.Addr, len(remotes))}
	for _, r := range remotes {
		pl.remotes <- net.TCPAddrFromAddrPort(r)
	}
	return pl
}

// Accept accepts a connection and gives it the next remote address.
func (l *Listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case a := <-l.remotes:
		return &conn{Conn: nc, remote: a}, nil
	default:
		return nc, nil
	}
}

type conn struct {
	net.Conn
	remote net.Addr
}

func (c *conn) RemoteAddr() net.Addr { return c.remote }

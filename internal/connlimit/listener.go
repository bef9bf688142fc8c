package connlimit

import (
	"net"
	"sync"
)

// Listener counts the connections l accepts against c, so that a server
// with no busy reply of its own (net/http) shares the process's limit
// with the mail servers: a connection c refuses is closed at once, and
// Accept goes on to the next; an admitted one gives its slot back when
// it is closed.
func Listener(l net.Listener, c Counter) net.Listener {
	return &listener{Listener: l, c: c}
}

type listener struct {
	net.Listener
	c Counter
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, err := l.c.Acquire(nc.RemoteAddr())
		if err != nil {
			nc.Close()
			continue
		}
		return &countedConn{Conn: nc, release: release}, nil
	}
}

// countedConn releases its slot once, on the first Close.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

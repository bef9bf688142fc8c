package smtp

import (
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// conn is every accepted connection, below TLS. It renews the read
// deadline on each read (so every read, in commands, DATA and the TLS
// handshake, is bounded), can close the connection right after the next
// reply, and carries what must outlive a go-smtp session (which STARTTLS
// replaces): the transaction state Shutdown needs and the count of
// authentication failures.
type conn struct {
	net.Conn
	srv         *Server
	free        func() // gives the connection-limit slots back
	readTimeout time.Duration

	mu         sync.Mutex
	top        net.Conn // what go-smtp reads and writes: conn itself or a *tls.Conn over it
	closeAfter bool     // close once the next reply is written
	busy       bool     // between MAIL and the end of the transaction
	draining   bool     // Shutdown asked this connection to end
	closed     bool
	authFails  int
	results    []AuthResult // connect-check results, kept across STARTTLS
	values     map[any]any  // connect-check values, likewise
	extra      []string     // connect-check header fields
	checked    bool         // connect checks have run
}

func (c *conn) Read(b []byte) (int, error) {
	if c.readTimeout > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.readTimeout)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

// Write writes b and, when a reply was marked as the last one, closes
// the connection after it. go-smtp writes each reply line with one
// flush, and a *tls.Conn turns a short write into one record, so the
// first write after closeAfter was set carries that reply.
func (c *conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.mu.Lock()
	last := c.closeAfter
	c.mu.Unlock()
	if last {
		c.Close()
	}
	return n, err
}

// Close closes the connection once and releases its limit slots.
func (c *conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	err := c.Conn.Close()
	c.srv.release(c)
	return err
}

// endAfterReply marks the next reply as the connection's last.
func (c *conn) endAfterReply() {
	c.mu.Lock()
	c.closeAfter = true
	c.mu.Unlock()
}

// beginTxn marks a transaction in flight; it fails when the server is
// draining, so that no transaction starts after Shutdown.
func (c *conn) beginTxn() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		c.closeAfter = true
		return false
	}
	c.busy = true
	return true
}

// endTxn marks the transaction finished; when Shutdown is waiting, the
// reply about to be written is the last.
func (c *conn) endTxn() {
	c.mu.Lock()
	c.busy = false
	if c.draining {
		c.closeAfter = true
	}
	c.mu.Unlock()
}

// drain is Shutdown's request: an idle connection is told 421 and
// closed at once, a busy one after its transaction.
func (c *conn) drain() {
	c.mu.Lock()
	c.draining = true
	idle := !c.busy && !c.closed
	top := c.top
	c.mu.Unlock()
	if idle {
		_ = top.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = top.Write([]byte("421 4.3.2 Service shutting down\r\n"))
		c.Close()
	}
}

// setTop records the connection go-smtp now talks through.
func (c *conn) setTop(t net.Conn) {
	c.mu.Lock()
	c.top = t
	c.mu.Unlock()
}

// connOf finds our conn below what go-smtp holds.
func connOf(nc net.Conn) *conn {
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
	}
	c, _ := nc.(*conn)
	return c
}

// listener applies the connection limits and wraps accepted
// connections, in TLS too for implicit-TLS servers.
type listener struct {
	net.Listener
	srv *Server
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c, ok := l.srv.admit(nc)
		if !ok {
			if l.srv.opts.ImplicitTLS {
				nc.Close()
				continue
			}
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = nc.Write([]byte("421 4.7.0 Too many connections, try again later\r\n"))
			nc.Close()
			continue
		}
		if l.srv.opts.ImplicitTLS {
			t := tls.Server(c, l.srv.opts.TLSConfig)
			c.setTop(t)
			return t, nil
		}
		return c, nil
	}
}

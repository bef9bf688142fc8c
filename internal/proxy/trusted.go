package proxy

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
)

// ErrUntrustedHeader is the read error of a connection from a peer that
// is not a trusted proxy and sent a PROXY protocol header: it is closed.
var ErrUntrustedHeader = errors.New("proxy: PROXY header from an untrusted peer")

// DefaultHeaderTimeout bounds the wait for a trusted proxy's header.
const DefaultHeaderTimeout = 5 * time.Second

// TrustedListener wraps ln so that a connection from one of trusted
// (a proxy in front of this node) must open with a PROXY protocol header
// (v1 or v2), whose client address its RemoteAddr then returns: the
// servers log, limit and throttle the real client. A trusted peer that
// sends no valid header within timeout is closed. A connection from
// anyone else is served as it is, and closed if it opens with a PROXY
// header: nobody else can claim another address. The header is read in
// the background, so one slow proxy never holds up Accept.
func TrustedListener(ln net.Listener, trusted []netip.Prefix, timeout time.Duration) net.Listener {
	if timeout <= 0 {
		timeout = DefaultHeaderTimeout
	}
	t := &trustedListener{
		Listener: ln,
		ready:    make(chan net.Conn),
		done:     make(chan struct{}),
	}
	t.pp = &proxyproto.Listener{
		Listener: ln,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if isTrusted(o.Upstream, trusted) {
				return proxyproto.REQUIRE, nil
			}
			return proxyproto.SKIP, nil
		},
		ReadHeaderTimeout: timeout,
	}
	go t.loop()
	return t
}

// isTrusted reports whether a is a TCP address in one of trusted.
func isTrusted(a net.Addr, trusted []netip.Prefix) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

type trustedListener struct {
	net.Listener
	pp    *proxyproto.Listener
	ready chan net.Conn
	err   error // Accept's error, once done is closed
	done  chan struct{}
	once  sync.Once
}

// loop accepts, and hands over each connection once its header (if it
// needs one) is read.
func (t *trustedListener) loop() {
	for {
		nc, err := t.pp.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Set before done closes, and only if Close has not
			// closed it: Accept reads it after done.
			t.once.Do(func() { t.err = err; close(t.done) })
			return
		}
		pc, ok := nc.(*proxyproto.Conn)
		if !ok {
			t.hand(&headerRefuser{Conn: nc})
			continue
		}
		go func() {
			// ProxyHeader reads the header, bounded by the timeout.
			if pc.ProxyHeader() == nil {
				pc.Close()
				return
			}
			t.hand(pc)
		}()
	}
}

func (t *trustedListener) hand(c net.Conn) {
	select {
	case t.ready <- c:
	case <-t.done:
		c.Close()
	}
}

func (t *trustedListener) Accept() (net.Conn, error) {
	select {
	case c := <-t.ready:
		return c, nil
	case <-t.done:
		if t.err != nil {
			return nil, t.err
		}
		return nil, net.ErrClosed
	}
}

func (t *trustedListener) Close() error {
	err := t.Listener.Close()
	t.once.Do(func() { close(t.done) })
	return err
}

// headerRefuser is a connection from an untrusted peer: its first bytes
// must not be a PROXY header, v1 ("PROXY ") or v2 (its 12-byte
// signature), which no client command starts with.
type headerRefuser struct {
	net.Conn
	checked bool
	pending []byte
}

var (
	sigV1 = []byte("PROXY ")
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

func (c *headerRefuser) Read(b []byte) (int, error) {
	if c.checked {
		if len(c.pending) > 0 {
			n := copy(b, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		}
		return c.Conn.Read(b)
	}
	var buf [16]byte
	for !c.checked {
		n, err := c.Conn.Read(buf[:])
		c.pending = append(c.pending, buf[:n]...)
		if isPrefixOrHas(c.pending, sigV1) || isPrefixOrHas(c.pending, sigV2) {
			if len(c.pending) >= len(sigV1) && bytes.HasPrefix(c.pending, sigV1) ||
				len(c.pending) >= len(sigV2) && bytes.HasPrefix(c.pending, sigV2) {
				c.Conn.Close()
				return 0, ErrUntrustedHeader
			}
		} else {
			c.checked = true
		}
		if err != nil {
			if len(c.pending) == 0 {
				return 0, err
			}
			c.checked = true
		}
	}
	return c.Read(b)
}

// isPrefixOrHas reports whether b and sig agree on their common length.
func isPrefixOrHas(b, sig []byte) bool {
	n := min(len(b), len(sig))
	return bytes.Equal(b[:n], sig[:n])
}

package smtp

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/mailagent/mailagent/internal/connlimit/connlimittest"
)

// TestConnectionLimitsIPv6Network: the addresses of one IPv6 /64 share
// MaxConnsPerIP, another /64 has its own. The loopback offers only ::1,
// no second address of its /64, so the listener poses the clients'
// addresses on real loopback connections.
func TestConnectionLimitsIPv6Network(t *testing.T) {
	st := newTestStack(t)
	o := st.options(MX)
	o.MaxConnsPerIP = 2
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := st.serveOn(o, connlimittest.NewListener(l,
		netip.MustParseAddrPort("[2001:db8:1:2::1]:1025"),
		netip.MustParseAddrPort("[2001:db8:1:2:a:b:c:d]:1025"),
		netip.MustParseAddrPort("[2001:db8:1:2::3]:1025"),
		netip.MustParseAddrPort("[2001:db8:1:3::1]:1025")))
	// Each dial waits for its reply, so the server accepts them in order.
	dial(t, "tcp", addr).run("S: 220")
	dial(t, "tcp", addr).run("S: 220")
	dial(t, "tcp", addr).run("S: 421 4.7.0\nCLOSED")
	dial(t, "tcp", addr).run("S: 220")
}

// TestConnectionLimitsUnixSocket: clients of a Unix socket, local
// processes without an address, count against MaxConns only.
func TestConnectionLimitsUnixSocket(t *testing.T) {
	st := newTestStack(t)
	o := st.options(LMTP)
	o.Network, o.Addr = "unix", filepath.Join(st.dir, "lmtp.sock")
	o.MaxConns, o.MaxConnsPerIP = 3, 1
	addr, _ := st.serve(o)
	for range 3 {
		dial(t, "unix", addr).run("S: 220")
	}
	dial(t, "unix", addr).run("S: 421 4.7.0\nCLOSED")
}

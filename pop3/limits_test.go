package pop3

import (
	"bufio"
	"errors"
	"net/netip"
	"testing"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/internal/connlimit/connlimittest"
)

// TestConnectionLimitIPv6Network: the addresses of one IPv6 /64 share
// MaxConnsPerIP, another /64 has its own. The loopback offers only ::1,
// no second address of its /64, so the listener poses the clients'
// addresses on real loopback connections.
func TestConnectionLimitIPv6Network(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *auth.Authenticator) { o.MaxConnsPerIP = 1 })
	l := listen(t)
	served := make(chan error, 1)
	go func() {
		served <- e.srv.Serve(connlimittest.NewListener(l,
			netip.MustParseAddrPort("[2001:db8:1:2::1]:1025"),
			netip.MustParseAddrPort("[2001:db8:1:2:a:b:c:d]:1025"),
			netip.MustParseAddrPort("[2001:db8:1:3::1]:1025")))
	}()
	t.Cleanup(func() {
		e.srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	// Each dial waits for its reply, so the server accepts them in order.
	dial := func() *testClient {
		nc, err := netDial(l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return &testClient{t: t, nc: nc, r: bufio.NewReader(nc)}
	}
	a := dial()
	a.expect("+OK pop.example.org POP3 ready.")
	b := dial()
	b.expect("-ERR [SYS/TEMP] Too many connections, try again later.")
	b.eof()
	c := dial()
	c.expect("+OK pop.example.org POP3 ready.")
	a.cmd("QUIT", "+OK Logging out.")
	c.cmd("QUIT", "+OK Logging out.")
}

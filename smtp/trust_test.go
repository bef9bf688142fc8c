package smtp

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

// TestLMTPNetworks: by default LMTP takes TCP clients from loopback
// only; a client outside LMTPNetworks gets 554 5.7.1 in place of the
// greeting and is disconnected, while a Unix-socket client and the MX
// are not affected.
func TestLMTPNetworks(t *testing.T) {
	st := newTestStack(t)
	open, _ := st.serve(st.options(LMTP))
	dial(t, "tcp", open).run(`
		S: 220 mx.test
		C: LHLO postfix.local
		S: 250`)

	o := st.options(LMTP)
	o.LMTPNetworks = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	closed, _ := st.serve(o)
	dial(t, "tcp", closed).run(`
		S: 554 5.7.1
		CLOSED`)

	o.Network, o.Addr = "unix", filepath.Join(st.dir, "lmtp.sock")
	sock, _ := st.serve(o)
	dial(t, "unix", sock).run(`
		S: 220 mx.test
		C: LHLO postfix.local
		S: 250`)

	o = st.options(MX)
	o.LMTPNetworks = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	mx, _ := st.serve(o)
	dial(t, "tcp", mx).run(`S: 220 mx.test`)
}

func TestClientAllowed(t *testing.T) {
	s := &Server{opts: Options{Role: LMTP}}
	for _, c := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, true},
		{&net.TCPAddr{IP: net.ParseIP("127.8.9.10")}, true},
		{&net.TCPAddr{IP: net.ParseIP("::1")}, true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1")}, true},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1")}, false},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1")}, false},
		{&net.TCPAddr{}, false},
		{&net.UnixAddr{Name: "@", Net: "unix"}, true},
	} {
		if got := s.clientAllowed(c.addr); got != c.want {
			t.Errorf("clientAllowed(%v) = %v, want %v", c.addr, got, c.want)
		}
	}
}

// TestLMTPStripsForgedAuthResults: an Authentication-Results field
// carrying this host's authserv-id does not survive delivery over LMTP
// (as over the MX and submission); one from another host does.
func TestLMTPStripsForgedAuthResults(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(LMTP))
	msg := "Authentication-Results: mx.test; dkim=pass header.d=bank.example\r\n" +
		"Authentication-Results: (comment) MX.TEST;\r\n\tspf=pass smtp.mailfrom=bank.example\r\n" +
		"Authentication-Results: relay.example; spf=fail\r\n" +
		"Subject: forged\r\n\r\nbody\r\n"
	dial(t, "tcp", addr).run(`
		S: 220
		C: LHLO postfix.local
		S: 250` + toAlice + `
		R: ` + fmt.Sprintf("%q", msg+".\r\n") + `
		S: 250`)
	got := st.messages("alice@local.example", "")
	if len(got) != 1 {
		t.Fatalf("alice has %d messages, want 1", len(got))
	}
	if strings.Contains(got[0], "bank.example") {
		t.Errorf("forged Authentication-Results kept:\n%s", got[0])
	}
	if !strings.Contains(got[0], "Authentication-Results: relay.example; spf=fail\r\n") {
		t.Errorf("another host's Authentication-Results removed:\n%s", got[0])
	}
}

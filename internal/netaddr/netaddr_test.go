package netaddr

import (
	"net"
	"testing"
)

type textAddr string

func (a textAddr) Network() string { return "test" }
func (a textAddr) String() string  { return string(a) }

func TestIP(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string // "" for none
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 25}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 25}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 25, Zone: "eth0"}, "2001:db8::1"},
		{&net.UDPAddr{IP: net.ParseIP("2001:db8::2")}, "2001:db8::2"},
		{&net.IPAddr{IP: net.ParseIP("198.51.100.1")}, "198.51.100.1"},
		{textAddr("[2001:db8::3%lo]:143"), "2001:db8::3"},
		{textAddr("203.0.113.9"), "203.0.113.9"},
		{&net.UnixAddr{Name: "/run/lmtp.sock", Net: "unix"}, ""},
		{textAddr("pipe"), ""},
		{&net.TCPAddr{}, ""},
		{nil, ""},
	} {
		ip, ok := IP(c.addr)
		if got := ip.String(); ok != (c.want != "") || ok && got != c.want {
			t.Errorf("IP(%v) = %s, %v; want %q", c.addr, got, ok, c.want)
		}
	}
}

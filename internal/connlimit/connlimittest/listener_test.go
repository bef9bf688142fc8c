package connlimittest

import (
	"net"
	"net/netip"
	"testing"
)

func TestListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pl := NewListener(l, netip.MustParseAddrPort("[2001:db8::1]:1025"), netip.MustParseAddrPort("192.0.2.1:25"))
	var got []string
	for range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sc, err := pl.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		got = append(got, sc.RemoteAddr().String())
	}
	want := []string{"[2001:db8::1]:1025", "192.0.2.1:25"}
	if got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("remote addresses %q, want %q first", got[:2], want)
	}
	if ap, err := netip.ParseAddrPort(got[2]); err != nil || !ap.Addr().IsLoopback() {
		t.Fatalf("third remote address %q, want the connection's own, on the loopback", got[2])
	}
}

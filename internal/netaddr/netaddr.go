// Package netaddr reads the IP address out of a connection's net.Addr,
// the one step every per-client limit (connection counts, the login
// throttle) starts from.
package netaddr

import (
	"net"
	"net/netip"
)

// IP returns addr's IP address, an IPv4-mapped IPv6 address as the IPv4
// one and without an IPv6 zone. Besides TCP, UDP and IP addresses it
// reads another net.Addr (a proxy's, a test's) whose String is host:port
// or a bare address. It reports false for an address without IP, such
// as a Unix-domain socket's, and for nil.
func IP(addr net.Addr) (netip.Addr, bool) {
	var ip netip.Addr
	switch a := addr.(type) {
	case nil:
		return netip.Addr{}, false
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.IPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		s := a.String()
		if ap, err := netip.ParseAddrPort(s); err == nil {
			ip = ap.Addr()
		} else if ip, err = netip.ParseAddr(s); err != nil {
			return netip.Addr{}, false
		}
	}
	if !ip.IsValid() {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

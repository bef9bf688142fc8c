package dnsauth

import (
	"fmt"
	"net"
	"strings"
)

// ReverseName returns the owner name of ip's PTR record:
// d.c.b.a.in-addr.arpa for IPv4, 32 nibbles under ip6.arpa for IPv6.
func ReverseName(ip net.IP) string {
	if ip4 := ip.To4(); ip4 != nil {
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", ip4[3], ip4[2], ip4[1], ip4[0])
	}
	ip16 := ip.To16()
	if ip16 == nil {
		return ""
	}
	var b strings.Builder
	for i := len(ip16) - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "%x.%x.", ip16[i]&0xf, ip16[i]>>4)
	}
	b.WriteString("ip6.arpa")
	return b.String()
}

// ReverseNameIP is the inverse of ReverseName; nil when name is not a
// complete reverse name.
func ReverseNameIP(name string) net.IP {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if v4, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		p := strings.Split(v4, ".")
		if len(p) != 4 {
			return nil
		}
		return net.ParseIP(p[3] + "." + p[2] + "." + p[1] + "." + p[0]).To4()
	}
	if v6, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		p := strings.Split(v6, ".")
		if len(p) != 32 {
			return nil
		}
		var b strings.Builder
		for i := 31; i >= 0; i-- {
			if len(p[i]) != 1 {
				return nil
			}
			b.WriteString(p[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		return net.ParseIP(b.String())
	}
	return nil
}

package connlimit

import "testing"

// FuzzClientNetwork: any address string gives either no network or an
// IPv4 /32 or IPv6 /64 that is already masked.
func FuzzClientNetwork(f *testing.F) {
	for _, s := range []string{"192.0.2.1:25", "[2001:db8::1]:25", "[fe80::1%eth0]:1", "::ffff:1.2.3.4", "/run/sock", "@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := ClientNetwork(strAddr(s))
		if !ok {
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			t.Fatalf("%q: network %v", s, p)
		}
		if b := p.Bits(); (p.Addr().Is4() && b != 32) || (p.Addr().Is6() && b != 64) {
			t.Fatalf("%q: %d bits", s, b)
		}
	})
}

package dnsauth

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// serveDNS answers UDP queries on a loopback port from m, until the test
// ends. It returns the server's address.
func serveDNS(t *testing.T, m *MockResolver) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- m.Serve(pc) }()
	t.Cleanup(func() {
		pc.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return pc.LocalAddr().String()
}

func TestNewServerResolver(t *testing.T) {
	m := &MockResolver{}
	m.AddTXT("a.test", "v=spf1 ip4:192.0.2.10 -all")
	long := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 392) // an RSA-2048 key's length
	m.AddTXT("s._domainkey.a.test", long)
	m.AddMX("a.test", "mail.a.test", 10)
	m.AddIP("mail.a.test", net.ParseIP("192.0.2.10"), net.ParseIP("2001:db8::10"))
	m.AddPTR(net.ParseIP("192.0.2.10"), "mail.a.test")
	r := NewServerResolver(serveDNS(t, m))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	txt, err := r.LookupTXT(ctx, "a.test")
	if err != nil || len(txt) != 1 || txt[0] != "v=spf1 ip4:192.0.2.10 -all" {
		t.Errorf("TXT: %q, %v", txt, err)
	}
	// Longer than one 255-byte character-string: split on the wire,
	// joined again by the resolver.
	if txt, err := r.LookupTXT(ctx, "s._domainkey.a.test"); err != nil || len(txt) != 1 || txt[0] != long {
		t.Errorf("long TXT: %q, %v", txt, err)
	}
	mx, err := r.LookupMX(ctx, "a.test")
	if err != nil || len(mx) != 1 || mx[0].Host != "mail.a.test." || mx[0].Pref != 10 {
		t.Errorf("MX: %v, %v", mx, err)
	}
	addrs, err := r.LookupIPAddr(ctx, "mail.a.test")
	var got []string
	for _, a := range addrs {
		got = append(got, a.IP.String())
	}
	slices.Sort(got)
	if err != nil || strings.Join(got, " ") != "192.0.2.10 2001:db8::10" {
		t.Errorf("A/AAAA: %v, %v", got, err)
	}
	names, err := r.LookupAddr(ctx, "192.0.2.10")
	if err != nil || len(names) != 1 || names[0] != "mail.a.test." {
		t.Errorf("PTR: %v, %v", names, err)
	}
	_, err = r.LookupTXT(ctx, "nx.a.test")
	if !isNotFound(err) {
		t.Errorf("NXDOMAIN: %v", err)
	}

	// The whole SPF check over the wire.
	if res := CheckSPF(ctx, nil, WithTimeout(r, 5*time.Second), net.ParseIP("192.0.2.10"), "mail.a.test", "joe@a.test"); res.Status != SPFPass {
		t.Errorf("SPF over UDP: %+v", res)
	}
}

func TestWithTimeoutBoundsHangingLookups(t *testing.T) {
	m := &MockResolver{Hang: map[string]bool{"slow.test": true}}
	r := WithTimeout(m, 20*time.Millisecond)
	_, err := r.LookupTXT(context.Background(), "slow.test")
	if !isTemporary(err) {
		t.Errorf("hanging lookup: %v, want a timeout", err)
	}
}

package outbound

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/smtp/mail"
)

func TestLookupMX(t *testing.T) {
	ctx := context.Background()
	r := &dnsauth.MockResolver{
		MX: map[string][]*net.MX{
			"sorted.test":        {{Host: "c.sorted.test.", Pref: 30}, {Host: "a.sorted.test.", Pref: 10}, {Host: "b.sorted.test.", Pref: 20}},
			"null.test":          {{Host: ".", Pref: 0}},
			"mixed.test":         {{Host: ".", Pref: 0}, {Host: "mx.mixed.test", Pref: 10}},
			"iplit.test":         {{Host: "192.0.2.1", Pref: 10}},
			"iplit2.test":        {{Host: "[192.0.2.1]", Pref: 10}, {Host: "mx.iplit2.test", Pref: 20}},
			"xn--bcher-kva.test": {{Host: "mx.xn--bcher-kva.test", Pref: 10}},
		},
		IP:   map[string][]net.IP{"implicit.test": {net.ParseIP("192.0.2.7")}},
		Fail: map[string]error{"servfail.test": dnsauth.NewTempError("servfail.test")},
	}
	check := func(domain string, want []string, code int, enh [3]int) {
		t.Helper()
		got, err := LookupMX(ctx, r, domain)
		if code == 0 {
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("%s: got %v, %v; want %v", domain, got, err, want)
			}
			return
		}
		var se *mail.Error
		if !errors.As(err, &se) || se.Code != code || [3]int(se.EnhancedCode) != enh {
			t.Errorf("%s: got %v, %v; want %d %v", domain, got, err, code, enh)
		}
	}
	check("sorted.test", []string{"a.sorted.test", "b.sorted.test", "c.sorted.test"}, 0, [3]int{})
	check("implicit.test", []string{"implicit.test"}, 0, [3]int{})
	check("null.test", nil, 556, [3]int{5, 1, 10})
	check("mixed.test", []string{"mx.mixed.test"}, 0, [3]int{})
	check("iplit.test", nil, 550, [3]int{5, 4, 4})
	check("iplit2.test", []string{"mx.iplit2.test"}, 0, [3]int{})
	check("nxdomain.test", nil, 550, [3]int{5, 1, 2})
	check("bücher.test", []string{"mx.xn--bcher-kva.test"}, 0, [3]int{})
	check("servfail.test", nil, 451, [3]int{4, 4, 3})
}

func TestLookupMXShufflesEqualPreference(t *testing.T) {
	r := &dnsauth.MockResolver{MX: map[string][]*net.MX{
		"eq.test": {{Host: "a.eq.test", Pref: 10}, {Host: "b.eq.test", Pref: 10}, {Host: "z.eq.test", Pref: 5}},
	}}
	firsts := map[string]bool{}
	for range 200 {
		got, err := LookupMX(context.Background(), r, "eq.test")
		if err != nil || len(got) != 3 || got[0] != "z.eq.test" {
			t.Fatalf("got %v, %v", got, err)
		}
		firsts[got[1]] = true
	}
	if !firsts["a.eq.test"] || !firsts["b.eq.test"] {
		t.Errorf("equal preferences never reordered: %v", firsts)
	}
}

package outbound

import "testing"

func TestParseNextHop(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want NextHop
	}{
		{"example.org", NextHop{Protocol: SMTP, Host: "example.org", MX: true}},
		{"smtp:Example.ORG.", NextHop{Protocol: SMTP, Host: "example.org", MX: true}},
		{"smtp:example.org:2525", NextHop{Protocol: SMTP, Host: "example.org", Port: 2525, MX: true}},
		{"smtp:[mail.example.org]:587", NextHop{Protocol: SMTP, Host: "mail.example.org", Port: 587}},
		{"[192.0.2.1]", NextHop{Protocol: SMTP, Host: "192.0.2.1"}},
		{"smtps:[mail.example.org]:465", NextHop{Protocol: SMTPS, Host: "mail.example.org", Port: 465}},
		{"smtp:[::1]:25", NextHop{Protocol: SMTP, Host: "::1", Port: 25}},
		{"lmtp:127.0.0.1:24", NextHop{Protocol: LMTP, Host: "127.0.0.1", Port: 24}},
		{"lmtp:inet:localhost:2424", NextHop{Protocol: LMTP, Host: "localhost", Port: 2424}},
		{"lmtp:[::1]:24", NextHop{Protocol: LMTP, Host: "::1", Port: 24}},
		{"lmtp:localhost", NextHop{Protocol: LMTP, Host: "localhost", Port: 24}},
		{"lmtp:unix:/run/dovecot/lmtp", NextHop{Protocol: LMTP, Host: "/run/dovecot/lmtp", Unix: true}},
	} {
		got, err := ParseNextHop(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseNextHop(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		// String gives back something that parses to the same hop.
		again, err := ParseNextHop(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %q via %q: %+v, %v", tc.in, got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "smtp:", "smtp:[x", "smtp:[x]y", "smtp:host:0", "smtp:host:99999",
		"smtp:host:port", "lmtp:unix:relative", "smtp:a b", "smtp:[]:25", "smtp:a/b"} {
		if h, err := ParseNextHop(bad); err == nil {
			t.Errorf("ParseNextHop(%q) = %+v, want error", bad, h)
		}
	}
}

func FuzzParseNextHop(f *testing.F) {
	for _, s := range []string{"example.org", "smtp:[h]:25", "lmtp:unix:/x", "smtps:[::1]:465", "lmtp:inet:h:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseNextHop(s)
		if err != nil {
			return
		}
		again, err := ParseNextHop(h.String())
		if err != nil || again != h {
			t.Fatalf("%q parsed to %+v, whose String %q gives %+v, %v", s, h, h.String(), again, err)
		}
	})
}

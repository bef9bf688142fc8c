package dnsauth

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
)

func FuzzParseSPF(f *testing.F) {
	for _, s := range []string{
		"v=spf1 -all",
		"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx:example.com/24//64 ~all",
		"v=spf1 include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d} redirect=%{d2}",
		"v=spf1 a:foo:bar/baz.example.com ptr:%{p}.example.com exp=explain.%{d} foo=%{s}",
		"v=spf1 a//129", "v=spf1 ip4:1.2.3.4:8080", "v=spf1 %{z}", "V=SPF1 ?ALL",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := ParseSPF(s)
		if err != nil {
			return
		}
		// The canonical form parses to the same record.
		again, err := ParseSPF(rec.String())
		if err != nil {
			t.Fatalf("%q → %q: %v", s, rec.String(), err)
		}
		if !reflect.DeepEqual(rec, again) {
			t.Fatalf("%q → %q: %+v != %+v", s, rec.String(), rec, again)
		}
	})
}

func FuzzSPFMacro(f *testing.F) {
	for _, s := range []string{"%{ir}.%{v}._spf.%{d2}", "%{l1r-}.%{o}", "%{P}%%%_%-", "%{c} at %{t} by %{r}", "%{h20r,}"} {
		f.Add(s, true)
	}
	env := &spfEnv{ip: net.ParseIP("2001:db8::1"), sender: "a-b.c@example.com", helo: "h.example.com", resolver: &MockResolver{}}
	f.Fuzz(func(t *testing.T, s string, exp bool) {
		out, err := env.expand(context.Background(), s, "example.com", exp)
		if err == nil && !exp && len(out) > maxDomainLen {
			t.Fatalf("%q expands to %d bytes", s, len(out))
		}
	})
}

func FuzzParseDKIMKeyRecord(f *testing.F) {
	for _, s := range []string{
		rfc8463EdRecord, rfc8463RSARecord, "v=DKIM1; p=", "k=rsa; t=y:s; h=sha256; p=AAAA", "v=DKIM1;; p = ab cd ;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ParseDKIMTags(s)
		ParseDKIMKeyRecord(s)
	})
}

func FuzzParseDMARC(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=reject; sp=none; adkim=s; aspf=r; pct=50; rua=mailto:a@b.test,mailto:c@d.test",
		"v=DMARC1; p=bogus; rua=mailto:r@x.test", "v=DMARC1", "v=DMARC1; p=none; pct=101",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if IsDMARCRecord(s) {
			ParseDMARC(s)
		}
	})
}

func FuzzMessageHeader(f *testing.F) {
	f.Add([]byte(rfc8463Message), "mx.b.test")
	f.Add([]byte("Authentication-Results: (c (nested)) mx; spf=pass\r\n\tfolded\r\nFrom: a@b.test\r\n\r\nbody"), "mx")
	f.Add([]byte(" leading\r\nFrom: \"x\" <a@b.test>, c@d.test\r\n\r\n"), "x")
	f.Fuzz(func(t *testing.T, msg []byte, id string) {
		out, removed, err := StripAuthResults(bytes.NewReader(msg), id)
		if err != nil {
			return
		}
		got, _ := io.ReadAll(out)
		if removed == 0 && !bytes.Equal(got, msg) {
			t.Fatalf("nothing removed but the message changed:\n%q\n%q", msg, got)
		}
		if len(got) > len(msg) {
			t.Fatalf("output grew")
		}
		FromDomain(msg)
		for _, fl := range splitHeader(msg) {
			AuthServID(fl.value())
		}
	})
}

func FuzzReverseName(f *testing.F) {
	f.Add("10.2.0.192.in-addr.arpa")
	f.Add("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.")
	f.Fuzz(func(t *testing.T, name string) {
		ip := ReverseNameIP(name)
		if ip == nil {
			return
		}
		if back := ReverseName(ip); !strings.EqualFold(back, strings.TrimSuffix(name, ".")) {
			// Only canonical names round-trip; the address must.
			if !ReverseNameIP(back).Equal(ip) {
				t.Fatalf("%q → %v → %q", name, ip, back)
			}
		}
	})
}

// Whatever the checks report, the Authentication-Results field stays one
// well-formed field: no line break a sender could use to inject a field.
func FuzzAuthResultsHeader(f *testing.F) {
	f.Add("joe@a.test", "a.test", "sel", "rsa-sha256", "dkim: bad (sig)\r\nX: y", "b.test")
	f.Add("", "x;y", "s=\"1\"", "", "", "")
	f.Fuzz(func(t *testing.T, sender, domain, selector, algo, reason, from string) {
		spf := SPFResult{Status: SPFPass, Identity: "mailfrom", Sender: sender, Domain: domain}
		dkim := []DKIMResult{{Status: DKIMFail, Domain: domain, Selector: selector, Algorithm: algo, HeaderB: selector, Err: errors.New(reason)}}
		dmarc := DMARCResult{Status: DMARCFail, Domain: from, Policy: DMARCPolicyReject, Disposition: DMARCPolicyReject}
		ip := IPRevResult{Status: IPRevPass, IP: net.ParseIP("192.0.2.1"), Names: []string{reason}}
		h := AuthResults{IPRev: &ip, SPF: &spf, DKIM: dkim, DMARC: &dmarc}.Header("mx.test")
		body := strings.TrimSuffix(h, "\r\n")
		for _, line := range strings.Split(body, "\r\n")[1:] {
			if !strings.HasPrefix(line, "\t") {
				t.Fatalf("line %q is not a continuation:\n%q", line, h)
			}
		}
		if strings.ContainsAny(strings.ReplaceAll(body, "\r\n\t", ""), "\r\n") {
			t.Fatalf("bare line break in %q", h)
		}
		if AuthServID(strings.TrimPrefix(body, "Authentication-Results: ")) != "mx.test" {
			t.Fatalf("authserv-id lost in %q", h)
		}
	})
}

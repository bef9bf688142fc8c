package dnsauth

import (
	"context"
	"net"
	"strings"
	"testing"
)

func testSetup(t *testing.T, domain, host string, ips ...string) DomainSetup {
	t.Helper()
	s := DomainSetup{Domain: domain, MailHost: host}
	for _, ip := range ips {
		s.IPs = append(s.IPs, net.ParseIP(ip))
	}
	k, err := GenerateDKIMKey(domain, "ed1", DKIMAlgoEd25519)
	if err != nil {
		t.Fatal(err)
	}
	s.DKIM = []*DKIMKey{k}
	return s
}

// publish loads records into a MockResolver, as an administrator would
// publish them.
func publish(t *testing.T, m *MockResolver, recs []Record) {
	t.Helper()
	for _, r := range recs {
		if err := m.AddRecord(r); err != nil {
			t.Fatal(err)
		}
	}
}

func checksByType(checks []RecordCheck) map[string]RecordCheck {
	out := map[string]RecordCheck{}
	for _, c := range checks {
		out[c.Want.Type+" "+c.Want.Name] = c
	}
	return out
}

func TestRecordsExact(t *testing.T) {
	s := testSetup(t, "a.test", "mail.a.test", "192.0.2.10", "2001:db8::10")
	recs, err := Records(s)
	if err != nil {
		t.Fatal(err)
	}
	dkim, _ := s.DKIM[0].Record()
	want := []Record{
		{"a.test", "MX", "10 mail.a.test."},
		{"mail.a.test", "A", "192.0.2.10"},
		{"mail.a.test", "AAAA", "2001:db8::10"},
		{"a.test", "TXT", "v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all"},
		{"mail.a.test", "TXT", "v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all"},
		dkim,
		{"_dmarc.a.test", "TXT", "v=DMARC1; p=none; rua=mailto:postmaster@a.test"},
		{"10.2.0.192.in-addr.arpa", "PTR", "mail.a.test."},
		{"0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR", "mail.a.test."},
	}
	if len(recs) != len(want) {
		t.Fatalf("got %d records:\n%s", len(recs), ZoneFile(recs))
	}
	for i := range want {
		if recs[i] != want[i] {
			t.Errorf("record %d: %+v, want %+v", i, recs[i], want[i])
		}
	}
	if !strings.HasPrefix(dkim.Value, "v=DKIM1; k=ed25519; p=") || dkim.Name != "ed1._domainkey.a.test" {
		t.Errorf("DKIM record %+v", dkim)
	}
	line := recs[0].String()
	if line != "a.test.\t3600\tIN\tMX\t10 mail.a.test." {
		t.Errorf("zone line %q", line)
	}

	// Published exactly, every check passes.
	m := &MockResolver{}
	publish(t, m, recs)
	checks, err := CheckRecords(context.Background(), m, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.Status != CheckOK {
			t.Errorf("%s %s: %s: %s", c.Want.Type, c.Want.Name, c.Status, c.Problem)
		}
	}

	// An MX naming an address is refused at generation.
	bad := s
	bad.MailHost = "192.0.2.10"
	if _, err := Records(bad); err == nil {
		t.Error("Records accepted an IP address as the mail host")
	}
}

func TestRecordTXTSplit(t *testing.T) {
	k, err := GenerateDKIMKey("a.test", "rsa1", DKIMAlgoRSA)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := k.Record()
	line := r.String()
	if !strings.Contains(line, `" "`) {
		t.Errorf("RSA-2048 key record not split into 255-byte strings: %s", line)
	}
	for _, part := range strings.Split(strings.SplitN(line, "\t", 5)[4], `" "`) {
		if len(strings.Trim(part, `"`)) > 255 {
			t.Errorf("string of %d bytes", len(part))
		}
	}
}

// The seed installation (seed/000_2eb25083460d698b.txt, "添加域名解析")
// published an MX whose value was the server's address, and says so
// itself: "MX记录的值是规范主机名" (an MX's value is a host name).
func TestCheckRecordsSeedWrongMX(t *testing.T) {
	s := testSetup(t, "viviansj520.cn", "mail.viviansj520.cn", "203.0.113.25")
	recs, _ := Records(s)
	m := &MockResolver{}
	for _, r := range recs {
		if r.Type != "MX" {
			publish(t, m, []Record{r})
		}
	}
	m.AddMX("viviansj520.cn", "203.0.113.25", 10) // the seed's mistake
	checks, err := CheckRecords(context.Background(), m, s)
	if err != nil {
		t.Fatal(err)
	}
	c := checksByType(checks)["MX viviansj520.cn"]
	if c.Status != CheckWrong || !strings.Contains(c.Problem, "203.0.113.25 is an IP address") {
		t.Fatalf("MX check: %s: %s", c.Status, c.Problem)
	}
	report := FormatChecks(checks)
	for _, want := range []string{
		"wrong",
		"MX target 203.0.113.25 is an IP address",
		"viviansj520.cn.\t3600\tIN\tMX\t10 mail.viviansj520.cn.",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if ChecksOK(checks) {
		t.Error("ChecksOK with a wrong MX")
	}
}

func TestCheckRecordsMistakes(t *testing.T) {
	ctx := context.Background()
	s := testSetup(t, "a.test", "mail.a.test", "192.0.2.10")
	recs, _ := Records(s)
	for _, c := range []struct {
		name   string
		mutate func(m *MockResolver)
		key    string
		want   CheckStatus
		text   string
	}{
		{"MX is a CNAME", func(m *MockResolver) {
			m.MX["a.test"][0].Host = "mx.a.test."
			m.AddCNAME("mx.a.test", "mail.a.test")
		}, "MX a.test", CheckWrong, "is a CNAME"},
		{"MX host without address", func(m *MockResolver) { delete(m.IP, "mail.a.test") }, "MX a.test", CheckWrong, "no A or AAAA"},
		{"PTR elsewhere", func(m *MockResolver) { m.PTR["192.0.2.10"] = []string{"host.provider.test."} }, "PTR 10.2.0.192.in-addr.arpa", CheckWrong, "resolves back"},
		{"no PTR", func(m *MockResolver) { delete(m.PTR, "192.0.2.10") }, "PTR 10.2.0.192.in-addr.arpa", CheckMissing, ""},
		{"SPF without our IP", func(m *MockResolver) { m.TXT["a.test"] = []string{"v=spf1 ip4:198.51.100.1 -all"} }, "TXT a.test", CheckWrong, "not pass, for our address 192.0.2.10"},
		{"two SPF records", func(m *MockResolver) { m.AddTXT("a.test", "v=spf1 mx -all") }, "TXT a.test", CheckWrong, "2 SPF records"},
		{"DKIM key mismatch", func(m *MockResolver) {
			o, _ := GenerateDKIMKey("a.test", "ed1", DKIMAlgoEd25519)
			r, _ := o.Record()
			m.TXT["ed1._domainkey.a.test"] = []string{r.Value}
		}, "TXT ed1._domainkey.a.test", CheckWrong, "does not match"},
		{"DMARC missing", func(m *MockResolver) { delete(m.TXT, "_dmarc.a.test") }, "TXT _dmarc.a.test", CheckMissing, ""},
		{"DNS failure", func(m *MockResolver) { m.Fail = map[string]error{"_dmarc.a.test": NewTempError("_dmarc.a.test")} }, "TXT _dmarc.a.test", CheckError, "DNS lookup failed"},
	} {
		m := &MockResolver{}
		publish(t, m, recs)
		c.mutate(m)
		checks, err := CheckRecords(ctx, m, s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := checksByType(checks)[c.key]
		if !ok {
			t.Fatalf("%s: no check for %s", c.name, c.key)
		}
		if got.Status != c.want || !strings.Contains(got.Problem, c.text) {
			t.Errorf("%s: %s %q, want %s %q", c.name, got.Status, got.Problem, c.want, c.text)
		}
		if ChecksOK(checks) {
			t.Errorf("%s: ChecksOK", c.name)
		}
	}
}

func TestRecordsClientServices(t *testing.T) {
	s := testSetup(t, "a.test", "mail.a.test", "192.0.2.10")
	s.DKIM = nil
	s.Services = []ClientService{{"submissions", 465}, {"imaps", 993}, {"pop3s", 0}}
	s.AutoconfigPort = 443
	recs, err := Records(s)
	if err != nil {
		t.Fatal(err)
	}
	got := ZoneFile(recs)
	for _, line := range []string{
		"_submissions._tcp.a.test.\t3600\tIN\tSRV\t0 1 465 mail.a.test.\n",
		"_imaps._tcp.a.test.\t3600\tIN\tSRV\t0 1 993 mail.a.test.\n",
		"_pop3s._tcp.a.test.\t3600\tIN\tSRV\t0 0 0 .\n",
		"autoconfig.a.test.\t3600\tIN\tCNAME\tmail.a.test.\n",
		"autodiscover.a.test.\t3600\tIN\tCNAME\tmail.a.test.\n",
		"_autodiscover._tcp.a.test.\t3600\tIN\tSRV\t0 1 443 mail.a.test.\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("zone file lacks %q:\n%s", line, got)
		}
	}
	// The check leaves what it cannot look up aside instead of failing it.
	m := &MockResolver{}
	publish(t, m, recs)
	if _, srvs, err := m.LookupSRV(context.Background(), "imaps", "tcp", "a.test"); err != nil || len(srvs) != 1 || srvs[0].Port != 993 || srvs[0].Target != "mail.a.test." {
		t.Errorf("published _imaps._tcp: %v %v", srvs, err)
	}
	checks, err := CheckRecords(context.Background(), m, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.Want.Type == "SRV" || c.Want.Type == "CNAME" {
			t.Errorf("checked %v", c.Want)
		}
	}
	if !ChecksOK(checks) {
		t.Errorf("checks:\n%s", FormatChecks(checks))
	}
}

package dnsauth

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestEvaluateDMARCBranches(t *testing.T) {
	ctx := context.Background()
	pass := func(d string) []DKIMResult { return []DKIMResult{{Status: DKIMPass, Domain: d}} }
	spfPass := func(d string) SPFResult { return SPFResult{Status: SPFPass, Domain: d} }
	for _, c := range []struct {
		name    string
		records map[string]string
		fail    map[string]error
		from    string
		spf     SPFResult
		dkim    []DKIMResult
		status  DMARCStatus
		policy  DMARCPolicy
		dis     DMARCPolicy
		action  DMARCAction
	}{
		{"no record", nil, nil, "x.test", SPFResult{}, nil, DMARCNone, "", DMARCPolicyNone, DMARCAccept},
		{"dkim aligned", map[string]string{"_dmarc.x.test": "v=DMARC1; p=reject"}, nil, "x.test", SPFResult{}, pass("x.test"), DMARCPass, DMARCPolicyReject, DMARCPolicyNone, DMARCAccept},
		{"spf aligned relaxed", map[string]string{"_dmarc.x.test": "v=DMARC1; p=reject"}, nil, "x.test", spfPass("bounces.x.test"), nil, DMARCPass, DMARCPolicyReject, DMARCPolicyNone, DMARCAccept},
		{"spf strict misaligned", map[string]string{"_dmarc.x.test": "v=DMARC1; p=reject; aspf=s"}, nil, "x.test", spfPass("bounces.x.test"), nil, DMARCFail, DMARCPolicyReject, DMARCPolicyReject, DMARCReject},
		{"dkim strict misaligned", map[string]string{"_dmarc.x.test": "v=DMARC1; p=quarantine; adkim=s"}, nil, "x.test", SPFResult{}, pass("mail.x.test"), DMARCFail, DMARCPolicyQuarantine, DMARCPolicyQuarantine, DMARCJunk},
		{"dkim fail ignored", map[string]string{"_dmarc.x.test": "v=DMARC1; p=none"}, nil, "x.test", SPFResult{}, []DKIMResult{{Status: DKIMFail, Domain: "x.test"}}, DMARCFail, DMARCPolicyNone, DMARCPolicyNone, DMARCAccept},
		{"org fallback uses sp", map[string]string{"_dmarc.x.test": "v=DMARC1; p=none; sp=reject"}, nil, "news.x.test", SPFResult{}, nil, DMARCFail, DMARCPolicyReject, DMARCPolicyReject, DMARCReject},
		{"org fallback without sp uses p", map[string]string{"_dmarc.x.test": "v=DMARC1; p=quarantine"}, nil, "news.x.test", SPFResult{}, nil, DMARCFail, DMARCPolicyQuarantine, DMARCPolicyQuarantine, DMARCJunk},
		{"pct=0 weakens reject", map[string]string{"_dmarc.x.test": "v=DMARC1; p=reject; pct=0"}, nil, "x.test", SPFResult{}, nil, DMARCFail, DMARCPolicyReject, DMARCPolicyQuarantine, DMARCJunk},
		{"pct=0 weakens quarantine", map[string]string{"_dmarc.x.test": "v=DMARC1; p=quarantine; pct=0"}, nil, "x.test", SPFResult{}, nil, DMARCFail, DMARCPolicyQuarantine, DMARCPolicyNone, DMARCAccept},
		{"invalid p with rua is none", map[string]string{"_dmarc.x.test": "v=DMARC1; p=bogus; rua=mailto:r@x.test"}, nil, "x.test", SPFResult{}, nil, DMARCFail, DMARCPolicyNone, DMARCPolicyNone, DMARCAccept},
		{"temperror", nil, map[string]error{"_dmarc.x.test": NewTempError("_dmarc.x.test")}, "x.test", SPFResult{}, nil, DMARCTempError, "", DMARCPolicyNone, DMARCAccept},
		{"public suffix org domain", map[string]string{"_dmarc.example.co.uk": "v=DMARC1; p=reject"}, nil, "mail.example.co.uk", spfPass("example.co.uk"), nil, DMARCPass, DMARCPolicyReject, DMARCPolicyNone, DMARCAccept},
		{"different org under public suffix", map[string]string{"_dmarc.example.co.uk": "v=DMARC1; p=reject"}, nil, "example.co.uk", spfPass("other.co.uk"), nil, DMARCFail, DMARCPolicyReject, DMARCPolicyReject, DMARCReject},
	} {
		m := &MockResolver{Fail: c.fail}
		for name, txt := range c.records {
			m.AddTXT(name, txt)
		}
		// The two-records case makes the policy void.
		res := EvaluateDMARC(ctx, m, c.from, c.spf, c.dkim)
		if res.Status != c.status || res.Policy != c.policy || res.Disposition != c.dis || res.Action(DMARCFollowPolicy) != c.action {
			t.Errorf("%s: status %s policy %q dis %s action %v (%v); want %s %q %s %v",
				c.name, res.Status, res.Policy, res.Disposition, res.Action(DMARCFollowPolicy), res.Err, c.status, c.policy, c.dis, c.action)
		}
	}
	m := &MockResolver{}
	m.AddTXT("_dmarc.x.test", "v=DMARC1; p=reject", "v=DMARC1; p=none")
	if res := EvaluateDMARC(ctx, m, "x.test", SPFResult{}, nil); res.Status != DMARCNone {
		t.Errorf("two records: %s, want none", res.Status)
	}
}

func TestCheckIPRev(t *testing.T) {
	ctx := context.Background()
	ip := net.ParseIP("192.0.2.7")
	m := &MockResolver{}
	m.AddPTR(ip, "mail.a.test")
	m.AddIP("mail.a.test", ip)
	res := CheckIPRev(ctx, m, ip, "MAIL.a.test.")
	if res.Status != IPRevPass || !res.HELOMatch || len(res.Names) != 1 {
		t.Errorf("confirmed: %+v", res)
	}
	if res := CheckIPRev(ctx, m, ip, "[192.0.2.7]"); !res.HELOMatch || res.Status != IPRevPass {
		t.Errorf("address literal HELO: %+v", res)
	}
	if res := CheckIPRev(ctx, m, ip, "other.test"); res.HELOMatch {
		t.Errorf("other HELO matched: %+v", res)
	}

	m.IP["mail.a.test"] = []net.IP{net.ParseIP("192.0.2.8")}
	if res := CheckIPRev(ctx, m, ip, "mail.a.test"); res.Status != IPRevFail || !res.HasPTR {
		t.Errorf("not resolving back: %+v", res)
	}
	if res := CheckIPRev(ctx, m, net.ParseIP("192.0.2.99"), "x"); res.Status != IPRevFail || res.HasPTR {
		t.Errorf("no PTR: %+v", res)
	}
	m.Fail = map[string]error{"192.0.2.7": NewTempError("7.2.0.192.in-addr.arpa")}
	if res := CheckIPRev(ctx, m, ip, "x"); res.Status != IPRevTempError {
		t.Errorf("servfail: %+v", res)
	}
}

// A name server that never answers costs the caller's deadline, no more.
func TestSPFBoundedByContext(t *testing.T) {
	m := &MockResolver{Hang: map[string]bool{"slow.test": true}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := CheckSPF(ctx, nil, m, net.ParseIP("192.0.2.1"), "h.test", "a@slow.test")
	if res.Status != SPFTempError {
		t.Errorf("hanging DNS: %s (%v), want temperror", res.Status, res.Err)
	}
	if m.Queries("slow.test") != 1 {
		t.Errorf("%d queries", m.Queries("slow.test"))
	}
}

func TestSPFLookupLimits(t *testing.T) {
	ctx := context.Background()
	ip := net.ParseIP("192.0.2.1")
	m := &MockResolver{}
	// A chain of 12 includes: the 11th lookup is refused (RFC 7208 section
	// 4.6.4), and no query is made past the limit.
	names := []string{"l0.test", "l1.test", "l2.test", "l3.test", "l4.test", "l5.test", "l6.test", "l7.test", "l8.test", "l9.test", "l10.test", "l11.test", "l12.test"}
	for i := 0; i+1 < len(names); i++ {
		m.AddTXT(names[i], "v=spf1 include:"+names[i+1]+" -all")
	}
	m.AddTXT("l12.test", "v=spf1 +all")
	res := CheckSPF(ctx, nil, m, ip, "h.test", "a@l0.test")
	if res.Status != SPFPermError {
		t.Errorf("12 includes: %s, want permerror", res.Status)
	}
	if n := m.Queries("l12.test"); n != 0 {
		t.Errorf("queried past the limit: %d", n)
	}
	// Three lookups answering nothing: over the void limit of 2.
	m.AddTXT("void.test", "v=spf1 a:n1.test a:n2.test a:n3.test -all")
	if res := CheckSPF(ctx, nil, m, ip, "h.test", "a@void.test"); res.Status != SPFPermError {
		t.Errorf("3 void lookups: %s, want permerror", res.Status)
	}
}

func TestCheckSPFHeloAndNullSender(t *testing.T) {
	ctx := context.Background()
	ip := net.ParseIP("192.0.2.1")
	m := &MockResolver{}
	m.AddTXT("mail.a.test", "v=spf1 ip4:192.0.2.1 -all")
	res := CheckSPF(ctx, nil, m, ip, "mail.a.test", "")
	if res.Status != SPFPass || res.Identity != "helo" || res.Sender != "postmaster@mail.a.test" {
		t.Errorf("null sender: %+v", res)
	}
	if res := CheckSPFHelo(ctx, nil, m, net.ParseIP("192.0.2.2"), "mail.a.test"); res.Status != SPFFail {
		t.Errorf("helo from another address: %+v", res)
	}
	ar := AuthResults{SPF: &res}
	if h := ar.Header("mx"); h != "Authentication-Results: mx;\r\n\tspf=pass smtp.helo=mail.a.test\r\n" {
		t.Errorf("header %q", h)
	}
}

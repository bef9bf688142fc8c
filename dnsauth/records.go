package dnsauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// Record is one DNS resource record, as a zone file writes it.
type Record struct {
	Name  string // owner name, fully qualified, without the trailing dot
	Type  string // MX, A, AAAA, TXT, PTR, CNAME, SRV
	Value string // presentation form; a TXT value is the joined text, unquoted
}

// RecordTTL is the TTL written in zone-file lines.
const RecordTTL = 3600

// String returns the record as a zone-file line: owner, TTL, class, type
// and value, TXT text quoted and cut into strings of at most 255 bytes.
func (r Record) String() string {
	v := r.Value
	if r.Type == "TXT" {
		v = quoteTXT(v)
	}
	return fmt.Sprintf("%s.\t%d\tIN\t%s\t%s", r.Name, RecordTTL, r.Type, v)
}

// quoteTXT splits a TXT value into quoted character-strings of at most 255
// bytes (RFC 1035 section 3.3.14), escaping quotes and backslashes.
func quoteTXT(v string) string {
	var parts []string
	for len(v) > 0 {
		n := min(len(v), 255)
		parts = append(parts, `"`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v[:n])+`"`)
		v = v[n:]
	}
	if len(parts) == 0 {
		return `""`
	}
	return strings.Join(parts, " ")
}

// DomainSetup describes a mail domain and the host that serves it.
type DomainSetup struct {
	Domain   string     // the mail domain, e.g. example.com
	MailHost string     // the MX host name, e.g. mail.example.com
	IPs      []net.IP   // the public addresses of MailHost
	DKIM     []*DKIMKey // the domain's signing keys
	// ReportTo receives DMARC aggregate reports; postmaster@Domain when
	// empty.
	ReportTo string
	// Services are the mail access services clients find by SRV lookups
	// (RFC 6186, RFC 8314): a record per service, on MailHost.
	Services []ClientService
	// AutoconfigPort, when not 0, is the HTTPS port answering Thunderbird
	// autoconfig and Microsoft Autodiscover: the autoconfig. and
	// autodiscover. names of Domain point at MailHost, and an
	// _autodiscover._tcp SRV record names the port.
	AutoconfigPort int
}

// ClientService is one mail access service for an SRV record.
type ClientService struct {
	// Name is the service label without its underscore: "submissions",
	// "submission", "imaps", "imap", "pop3s" or "pop3".
	Name string
	// Port is where MailHost offers it; 0 publishes the service as not
	// offered (target ".", RFC 6186 section 3.4), so that clients do not
	// guess a port that is closed.
	Port int
}

func (s DomainSetup) normalized() (DomainSetup, error) {
	s.Domain = strings.ToLower(strings.TrimSuffix(s.Domain, "."))
	s.MailHost = strings.ToLower(strings.TrimSuffix(s.MailHost, "."))
	if err := checkFQDN(s.Domain); err != nil {
		return s, fmt.Errorf("dnsauth: domain: %w", err)
	}
	if net.ParseIP(s.MailHost) != nil {
		return s, fmt.Errorf("dnsauth: mail host %q is an address; an MX must name a host (RFC 5321 section 5.1)", s.MailHost)
	}
	if err := checkFQDN(s.MailHost); err != nil {
		return s, fmt.Errorf("dnsauth: mail host: %w", err)
	}
	if len(s.IPs) == 0 {
		return s, errors.New("dnsauth: the mail host needs at least one address")
	}
	if s.ReportTo == "" {
		s.ReportTo = "postmaster@" + s.Domain
	}
	return s, nil
}

// SPFRecordFor returns the SPF policy authorising exactly ips, failing
// everything else.
func SPFRecordFor(ips []net.IP) string {
	var b strings.Builder
	b.WriteString("v=spf1")
	for _, ip := range ips {
		if ip4 := ip.To4(); ip4 != nil {
			b.WriteString(" ip4:" + ip4.String())
		} else {
			b.WriteString(" ip6:" + ip.String())
		}
	}
	b.WriteString(" -all")
	return b.String()
}

// Records returns the records a mail domain needs, in the order to read
// them: the MX naming the mail host (never an address), the host's A and
// AAAA, SPF policies for the domain and for the host's HELO name, one DKIM
// key record per selector, a DMARC policy starting at p=none with
// aggregate reports, and the PTR records that the owner of each address
// (the hosting provider, usually) must set.
func Records(s DomainSetup) ([]Record, error) {
	s, err := s.normalized()
	if err != nil {
		return nil, err
	}
	recs := []Record{{Name: s.Domain, Type: "MX", Value: "10 " + s.MailHost + "."}}
	for _, ip := range s.IPs {
		t := "AAAA"
		if ip.To4() != nil {
			t = "A"
		}
		recs = append(recs, Record{Name: s.MailHost, Type: t, Value: ip.String()})
	}
	spf := SPFRecordFor(s.IPs)
	recs = append(recs, Record{Name: s.Domain, Type: "TXT", Value: spf})
	if s.MailHost != s.Domain {
		recs = append(recs, Record{Name: s.MailHost, Type: "TXT", Value: spf})
	}
	for _, k := range s.DKIM {
		r, err := k.Record()
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	recs = append(recs, Record{Name: "_dmarc." + s.Domain, Type: "TXT",
		Value: "v=DMARC1; p=none; rua=mailto:" + s.ReportTo})
	recs = append(recs, clientRecords(s)...)
	for _, ip := range s.IPs {
		recs = append(recs, Record{Name: ReverseName(ip), Type: "PTR", Value: s.MailHost + "."})
	}
	return recs, nil
}

// clientRecords are the records mail clients configure themselves from:
// SRV per access service (priority 0, weight 1: one host), and the
// autoconfig/autodiscover names.
func clientRecords(s DomainSetup) []Record {
	var recs []Record
	for _, svc := range s.Services {
		v := "0 0 0 ."
		if svc.Port > 0 {
			v = fmt.Sprintf("0 1 %d %s.", svc.Port, s.MailHost)
		}
		recs = append(recs, Record{Name: "_" + svc.Name + "._tcp." + s.Domain, Type: "SRV", Value: v})
	}
	if s.AutoconfigPort > 0 {
		recs = append(recs,
			Record{Name: "autoconfig." + s.Domain, Type: "CNAME", Value: s.MailHost + "."},
			Record{Name: "autodiscover." + s.Domain, Type: "CNAME", Value: s.MailHost + "."},
			Record{Name: "_autodiscover._tcp." + s.Domain, Type: "SRV",
				Value: fmt.Sprintf("0 1 %d %s.", s.AutoconfigPort, s.MailHost)})
	}
	return recs
}

// ZoneFile formats records as zone-file lines, one per record.
func ZoneFile(recs []Record) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.String() + "\n")
	}
	return b.String()
}

// CheckStatus is the verdict on one record.
type CheckStatus string

// The verdicts.
const (
	CheckOK      CheckStatus = "ok"
	CheckMissing CheckStatus = "missing"
	CheckWrong   CheckStatus = "wrong"
	CheckError   CheckStatus = "error" // DNS failed: no verdict
)

// RecordCheck is the verdict on one record a domain needs.
type RecordCheck struct {
	Want    Record // the record to publish
	Status  CheckStatus
	Found   []string // what DNS answered, in presentation form
	Problem string   // what is wrong, for a person to read
}

// CheckRecords queries DNS through r for each record Records(s) lists and
// says whether it is published right. It catches the usual mistakes: an MX
// naming an address or a CNAME, an MX host without addresses, a PTR that
// does not resolve back, an SPF policy not authorising our addresses or
// published twice, a DKIM key other than ours.
func CheckRecords(ctx context.Context, r Resolver, s DomainSetup) ([]RecordCheck, error) {
	s, err := s.normalized()
	if err != nil {
		return nil, err
	}
	want, err := Records(s)
	if err != nil {
		return nil, err
	}
	var checks []RecordCheck
	spfChecked := map[string]bool{}
	for _, w := range want {
		var c RecordCheck
		switch {
		case w.Type == "MX":
			c = checkMX(ctx, r, s, w)
		case w.Type == "A" || w.Type == "AAAA":
			c = checkAddr(ctx, r, w)
		case w.Type == "TXT" && IsSPFRecord(w.Value):
			if spfChecked[w.Name] {
				continue
			}
			spfChecked[w.Name] = true
			c = checkSPFRecord(ctx, r, s, w)
		case w.Type == "TXT" && strings.HasPrefix(w.Name, "_dmarc."):
			c = checkDMARCRecord(ctx, r, w)
		case w.Type == "TXT":
			c = checkDKIMRecord(ctx, r, w)
		case w.Type == "PTR":
			c = checkPTR(ctx, r, s, w)
		default:
			// SRV and the autoconfig CNAMEs help clients set themselves
			// up; mail flows without them, and Resolver has no SRV
			// lookup: they are printed by Records, not checked.
			continue
		}
		checks = append(checks, c)
	}
	return checks, nil
}

// lookupFailed turns a lookup error into a verdict: missing for NXDOMAIN
// or no records, error otherwise.
func lookupFailed(c RecordCheck, err error) RecordCheck {
	if isNotFound(err) {
		c.Status = CheckMissing
		c.Problem = fmt.Sprintf("no %s record for %s", c.Want.Type, c.Want.Name)
		return c
	}
	c.Status = CheckError
	c.Problem = "DNS lookup failed: " + err.Error()
	return c
}

// withProblems sets the verdict: wrong with the problems joined, or ok
// without any.
func withProblems(c RecordCheck, problems []string) RecordCheck {
	if len(problems) > 0 {
		c.Status, c.Problem = CheckWrong, strings.Join(problems, "; ")
	} else {
		c.Status = CheckOK
	}
	return c
}

func checkMX(ctx context.Context, r Resolver, s DomainSetup, w Record) RecordCheck {
	c := RecordCheck{Want: w}
	mxs, err := r.LookupMX(ctx, s.Domain)
	if err != nil {
		return lookupFailed(c, err)
	}
	var problems []string
	ours := false
	for _, mx := range mxs {
		host := strings.ToLower(strings.TrimSuffix(mx.Host, "."))
		c.Found = append(c.Found, fmt.Sprintf("%d %s", mx.Pref, mx.Host))
		if net.ParseIP(strings.Trim(host, "[]")) != nil {
			problems = append(problems, fmt.Sprintf("MX target %s is an IP address; an MX must name a host that has A/AAAA records (RFC 5321 section 5.1), and senders treat this one as a host name that does not exist", host))
			continue
		}
		if host == s.MailHost {
			ours = true
		}
		if cname, err := r.LookupCNAME(ctx, host); err == nil && !strings.EqualFold(strings.TrimSuffix(cname, "."), host) {
			problems = append(problems, fmt.Sprintf("MX target %s is a CNAME (to %s); an MX must name the canonical host (RFC 2181 section 10.3)", host, strings.TrimSuffix(cname, ".")))
		}
		if addrs, err := r.LookupIPAddr(ctx, host); err != nil || len(addrs) == 0 {
			problems = append(problems, fmt.Sprintf("MX host %s has no A or AAAA record", host))
		}
	}
	if !ours {
		problems = append(problems, fmt.Sprintf("no MX names %s", s.MailHost))
	}
	return withProblems(c, problems)
}

func checkAddr(ctx context.Context, r Resolver, w Record) RecordCheck {
	c := RecordCheck{Want: w}
	addrs, err := r.LookupIPAddr(ctx, w.Name)
	if err != nil {
		return lookupFailed(c, err)
	}
	want := net.ParseIP(w.Value)
	for _, a := range addrs {
		c.Found = append(c.Found, a.IP.String())
		if a.IP.Equal(want) {
			c.Status = CheckOK
		}
	}
	if c.Status != CheckOK {
		c.Status, c.Problem = CheckWrong, fmt.Sprintf("%s does not resolve to %s", w.Name, w.Value)
	}
	return c
}

// spfTXT returns the SPF records among name's TXT records.
func spfTXT(ctx context.Context, r Resolver, name string) ([]string, []string, error) {
	txts, err := r.LookupTXT(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	var spf []string
	for _, t := range txts {
		if IsSPFRecord(t) {
			spf = append(spf, t)
		}
	}
	return spf, txts, nil
}

func checkSPFRecord(ctx context.Context, r Resolver, s DomainSetup, w Record) RecordCheck {
	c := RecordCheck{Want: w}
	spf, _, err := spfTXT(ctx, r, w.Name)
	if err != nil {
		return lookupFailed(c, err)
	}
	c.Found = spf
	switch {
	case len(spf) == 0:
		c.Status, c.Problem = CheckMissing, "no SPF record (TXT starting with v=spf1) at "+w.Name
		return c
	case len(spf) > 1:
		c.Status, c.Problem = CheckWrong, fmt.Sprintf("%d SPF records at %s: receivers must treat that as a permanent error (RFC 7208 section 4.5); merge them into one", len(spf), w.Name)
		return c
	}
	if _, err := ParseSPF(spf[0]); err != nil {
		c.Status, c.Problem = CheckWrong, err.Error()
		return c
	}
	var problems []string
	for _, ip := range s.IPs {
		res := CheckSPF(ctx, nil, r, ip, s.MailHost, "postmaster@"+w.Name)
		if res.Status != SPFPass {
			p := fmt.Sprintf("SPF gives %s, not pass, for our address %s", res.Status, ip)
			if res.Err != nil {
				p += " (" + res.Err.Error() + ")"
			}
			problems = append(problems, p)
		}
	}
	return withProblems(c, problems)
}

func checkDMARCRecord(ctx context.Context, r Resolver, w Record) RecordCheck {
	c := RecordCheck{Want: w}
	txts, err := r.LookupTXT(ctx, w.Name)
	if err != nil {
		return lookupFailed(c, err)
	}
	for _, t := range txts {
		if IsDMARCRecord(t) {
			c.Found = append(c.Found, t)
		}
	}
	switch {
	case len(c.Found) == 0:
		c.Status, c.Problem = CheckMissing, "no DMARC record at "+w.Name
	case len(c.Found) > 1:
		c.Status, c.Problem = CheckWrong, fmt.Sprintf("%d DMARC records: receivers then apply none (RFC 7489 section 6.6.3)", len(c.Found))
	default:
		if _, err := ParseDMARC(c.Found[0]); err != nil {
			c.Status, c.Problem = CheckWrong, err.Error()
		} else {
			c.Status = CheckOK
		}
	}
	return c
}

func checkDKIMRecord(ctx context.Context, r Resolver, w Record) RecordCheck {
	c := RecordCheck{Want: w}
	txts, err := r.LookupTXT(ctx, w.Name)
	if err != nil {
		return lookupFailed(c, err)
	}
	c.Found = txts
	if len(txts) != 1 {
		c.Status, c.Problem = CheckWrong, fmt.Sprintf("%d TXT records at %s, want exactly one", len(txts), w.Name)
		if len(txts) == 0 {
			c.Status = CheckMissing
		}
		return c
	}
	pub, err := ParseDKIMKeyRecord(txts[0])
	if err != nil {
		c.Status, c.Problem = CheckWrong, err.Error()
		return c
	}
	mine, _ := ParseDKIMKeyRecord(w.Value)
	switch {
	case len(pub.PublicKey) == 0:
		c.Status, c.Problem = CheckWrong, "the published key is revoked (empty p=)"
	case pub.KeyType != mine.KeyType || !bytes.Equal(pub.PublicKey, mine.PublicKey):
		c.Status, c.Problem = CheckWrong, "the published key does not match our signing key for this selector: every signature will fail"
	default:
		c.Status = CheckOK
	}
	return c
}

func checkPTR(ctx context.Context, r Resolver, s DomainSetup, w Record) RecordCheck {
	c := RecordCheck{Want: w}
	ip := ReverseNameIP(w.Name)
	res := CheckIPRev(ctx, r, ip, s.MailHost)
	names, err := r.LookupAddr(ctx, ip.String())
	if err != nil {
		return lookupFailed(c, err)
	}
	c.Found = names
	switch {
	case res.Status != IPRevPass:
		c.Status = CheckWrong
		c.Problem = fmt.Sprintf("no reverse name of %s resolves back to it", ip)
		if res.Err != nil {
			c.Problem += " (" + res.Err.Error() + ")"
		}
	case !slices.Contains(res.Names, s.MailHost):
		c.Status = CheckWrong
		c.Problem = fmt.Sprintf("%s resolves back through %s, not %s: receivers compare it with the HELO name", ip, strings.Join(res.Names, ", "), s.MailHost)
	default:
		c.Status = CheckOK
	}
	return c
}

// ChecksOK reports whether every check passed.
func ChecksOK(checks []RecordCheck) bool {
	for _, c := range checks {
		if c.Status != CheckOK {
			return false
		}
	}
	return true
}

// FormatChecks writes a report for a person: one line per record with its
// verdict, and for each one not ok, what DNS has, what is wrong, and the
// zone-file line to publish.
func FormatChecks(checks []RecordCheck) string {
	var b strings.Builder
	for _, c := range checks {
		fmt.Fprintf(&b, "%-7s %-5s %s\n", c.Status, c.Want.Type, c.Want.Name)
		if c.Status == CheckOK {
			continue
		}
		if len(c.Found) > 0 {
			fmt.Fprintf(&b, "        found:   %s\n", strings.Join(c.Found, " | "))
		}
		if c.Problem != "" {
			fmt.Fprintf(&b, "        problem: %s\n", c.Problem)
		}
		fmt.Fprintf(&b, "        publish: %s\n", c.Want)
	}
	return b.String()
}

package dnsauth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// DMARCStatus is the DMARC result (RFC 7489 section 11.2), spelled as in
// Authentication-Results.
type DMARCStatus string

// The DMARC results.
const (
	DMARCNone      DMARCStatus = "none" // the From domain publishes no policy
	DMARCPass      DMARCStatus = "pass"
	DMARCFail      DMARCStatus = "fail"
	DMARCTempError DMARCStatus = "temperror"
	DMARCPermError DMARCStatus = "permerror" // no single From domain to check
)

// DMARCPolicy is a policy a domain publishes (p= and sp=).
type DMARCPolicy string

// The DMARC policies.
const (
	DMARCPolicyNone       DMARCPolicy = "none"       // only report
	DMARCPolicyQuarantine DMARCPolicy = "quarantine" // deliver to Junk
	DMARCPolicyReject     DMARCPolicy = "reject"     // refuse with 550 5.7.1
)

// DMARCResult is the DMARC evaluation of one message.
type DMARCResult struct {
	Status DMARCStatus
	// Domain is the From domain (header.from in Authentication-Results).
	Domain string
	// PolicyDomain is where the record was found: Domain itself or its
	// organizational domain (section 6.6.3).
	PolicyDomain string
	// Policy is the published policy that applies: sp= for a subdomain
	// that inherits its organizational domain's record, else p=.
	Policy DMARCPolicy
	// Disposition is what the domain asks done with this message: Policy
	// on fail, weakened one step when the message falls outside pct=
	// (section 6.6.4), and DMARCPolicyNone on pass or without a record.
	Disposition DMARCPolicy
	// SPFAligned and DKIMAligned tell which authenticated identifier
	// matched the From domain (section 3.1).
	SPFAligned, DKIMAligned bool
	// Record is the parsed record, nil without one.
	Record *dmarc.Record
	Err    error
}

// OrganizationalDomain returns the registered domain of domain per the
// Public Suffix List (RFC 7489 section 3.2): "example.co.uk" for
// "mail.example.co.uk". A name that is itself a public suffix is returned
// as is.
func OrganizationalDomain(domain string) string {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return org
}

// aligned compares an authenticated domain with the From domain under the
// record's mode: strict needs the same name, relaxed the same
// organizational domain.
func aligned(authDomain, fromDomain string, mode dmarc.AlignmentMode) bool {
	authDomain = strings.ToLower(strings.TrimSuffix(authDomain, "."))
	if authDomain == "" {
		return false
	}
	if mode == dmarc.AlignmentStrict {
		return authDomain == fromDomain
	}
	return OrganizationalDomain(authDomain) == OrganizationalDomain(fromDomain)
}

// EvaluateDMARC applies the DMARC policy of fromDomain (RFC 7489 section
// 6.6) to a message whose SPF and DKIM results are given: it looks up the
// record at _dmarc.fromDomain, then at the organizational domain, checks
// the alignment of the SPF-authenticated domain and of each passing DKIM
// signature with the From domain, and says what the domain asks done with
// a failing message. Lookups go through r under ctx, one after the other
// since the second depends on the first; VerifyMessage runs them
// concurrently with the DKIM key lookups.
func EvaluateDMARC(ctx context.Context, r Resolver, fromDomain string, spf SPFResult, dkim []DKIMResult) DMARCResult {
	from := strings.ToLower(strings.TrimSuffix(fromDomain, "."))
	res := DMARCResult{Status: DMARCNone, Domain: from, Disposition: DMARCPolicyNone}
	if from == "" {
		res.Status, res.Err = DMARCPermError, errors.New("dmarc: no From domain")
		return res
	}
	rec, at, err := lookupDMARC(ctx, r, from)
	return evaluateDMARC(from, rec, at, err, spf, dkim)
}

// evaluateDMARC is EvaluateDMARC once lookupDMARC has answered rec, at and
// err for the From domain from, normalized and not empty.
func evaluateDMARC(from string, rec *dmarc.Record, at string, err error, spf SPFResult, dkim []DKIMResult) DMARCResult {
	res := DMARCResult{Status: DMARCNone, Domain: from, Disposition: DMARCPolicyNone}
	if err != nil {
		res.Err = err
		if isTemporary(err) {
			res.Status = DMARCTempError
		}
		return res
	}
	if rec == nil {
		return res
	}
	res.Record, res.PolicyDomain = rec, at
	res.Policy = DMARCPolicy(rec.Policy)
	if at != from && rec.SubdomainPolicy != "" {
		res.Policy = DMARCPolicy(rec.SubdomainPolicy)
	}

	res.SPFAligned = spf.Status == SPFPass && aligned(spf.Domain, from, rec.SPFAlignment)
	for _, d := range dkim {
		if d.Status == DKIMPass && aligned(d.Domain, from, rec.DKIMAlignment) {
			res.DKIMAligned = true
		}
	}
	if res.SPFAligned || res.DKIMAligned {
		res.Status = DMARCPass
		return res
	}
	res.Status = DMARCFail
	res.Disposition = res.Policy
	if rec.Percent != nil && *rec.Percent < 100 && rand.IntN(100) >= *rec.Percent {
		switch res.Disposition {
		case DMARCPolicyReject:
			res.Disposition = DMARCPolicyQuarantine
		case DMARCPolicyQuarantine:
			res.Disposition = DMARCPolicyNone
		}
	}
	return res
}

// lookupDMARC finds the record for domain, falling back to its
// organizational domain. It returns nil and no error when neither has
// one.
func lookupDMARC(ctx context.Context, r Resolver, domain string) (*dmarc.Record, string, error) {
	rec, err := fetchDMARC(ctx, r, domain)
	if rec != nil || err != nil {
		return rec, domain, err
	}
	if org := OrganizationalDomain(domain); org != domain {
		rec, err = fetchDMARC(ctx, r, org)
		return rec, org, err
	}
	return nil, domain, nil
}

// fetchDMARC reads _dmarc.domain. Several DMARC records, or none, mean no
// policy (section 6.6.3); a record with an invalid p= counts as p=none
// when it names a report address, and as absent otherwise.
func fetchDMARC(ctx context.Context, r Resolver, domain string) (*dmarc.Record, error) {
	txts, err := r.LookupTXT(ctx, "_dmarc."+domain)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("dmarc: _dmarc.%s: %w", domain, err)
	}
	var found []string
	for _, t := range txts {
		if IsDMARCRecord(t) {
			found = append(found, t)
		}
	}
	if len(found) != 1 {
		return nil, nil
	}
	rec, err := ParseDMARC(found[0])
	if err != nil {
		return nil, nil
	}
	return rec, nil
}

// IsDMARCRecord reports whether a TXT string is a DMARC record: it starts
// with the v=DMARC1 tag (section 6.4).
func IsDMARCRecord(txt string) bool {
	v, _, _ := strings.Cut(txt, ";")
	name, value, ok := strings.Cut(v, "=")
	return ok && strings.TrimSpace(name) == "v" && strings.TrimSpace(value) == "DMARC1"
}

// ParseDMARC parses a DMARC record. A record with an invalid or missing p=
// but a rua= is read as p=none (section 6.6.3 step 6).
func ParseDMARC(txt string) (*dmarc.Record, error) {
	rec, err := dmarc.Parse(txt)
	if err == nil {
		return rec, nil
	}
	tags, terr := ParseDKIMTags(txt)
	if terr != nil || tags["rua"] == "" || tags["v"] != "DMARC1" {
		return nil, err
	}
	tags["p"] = "none"
	delete(tags, "sp")
	var b strings.Builder
	b.WriteString("v=DMARC1")
	for k, v := range tags {
		if k != "v" {
			b.WriteString("; " + k + "=" + v)
		}
	}
	return dmarc.Parse(b.String())
}

// DMARCAction is what the MX does with a message after DMARC.
type DMARCAction int

// The actions.
const (
	DMARCAccept DMARCAction = iota // deliver normally
	DMARCJunk                      // deliver to the Junk folder
	DMARCReject                    // refuse at end of DATA with 550 5.7.1
)

// DMARCMode is the receiver's policy for failing messages.
type DMARCMode int

// The modes. The zero value follows the sender's published policy.
const (
	DMARCFollowPolicy DMARCMode = iota // reject → refuse, quarantine → Junk, none → accept
	DMARCRecordOnly                    // only record the result in the header
	DMARCJunkOnFail                    // send every failing message to Junk
	DMARCRejectOnFail                  // refuse every failing message whose domain has a policy
)

// Action returns what a receiver configured with mode does with the
// message. Only a fail acts; temperror and none are accepted and
// recorded.
func (r DMARCResult) Action(mode DMARCMode) DMARCAction {
	if r.Status != DMARCFail {
		return DMARCAccept
	}
	switch mode {
	case DMARCRecordOnly:
		return DMARCAccept
	case DMARCJunkOnFail:
		return DMARCJunk
	case DMARCRejectOnFail:
		return DMARCReject
	}
	switch r.Disposition {
	case DMARCPolicyReject:
		return DMARCReject
	case DMARCPolicyQuarantine:
		return DMARCJunk
	}
	return DMARCAccept
}

// RejectText is the text of the 550 5.7.1 reply refusing a message under
// the From domain's DMARC policy.
func (r DMARCResult) RejectText() string {
	return fmt.Sprintf("5.7.1 message rejected by the DMARC policy of %s: not authenticated by SPF or DKIM", r.Domain)
}

package dnsauth

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"
)

// SPFStatus is the result of an SPF check (RFC 7208 section 2.6), spelled
// as in Received-SPF and Authentication-Results.
type SPFStatus string

// The SPF results.
const (
	SPFNone      SPFStatus = "none"
	SPFNeutral   SPFStatus = "neutral"
	SPFPass      SPFStatus = "pass"
	SPFFail      SPFStatus = "fail"
	SPFSoftFail  SPFStatus = "softfail"
	SPFTempError SPFStatus = "temperror"
	SPFPermError SPFStatus = "permerror"
)

// SPFResult is the outcome of one SPF check.
type SPFResult struct {
	Status SPFStatus
	// Identity is "mailfrom" or "helo": which identity was checked (RFC
	// 8601 section 2.7.2 names the ptype smtp.mailfrom or smtp.helo).
	Identity string
	// Domain is the domain whose policy was evaluated.
	Domain string
	// Sender is the address the macros saw: the MAIL FROM address, or
	// postmaster@ the HELO name for the null sender (section 2.4).
	Sender string
	// Explanation is the sender domain's exp= text after a fail, "" when
	// the domain gave none or it could not be fetched (section 6.2).
	Explanation string
	// Err tells why the result is what it is (a DNS error, a syntax error,
	// a limit reached); nil for a plain pass or fail.
	Err error
}

// SPFLookupTimeout bounds a whole SPF evaluation when the caller's context
// has no earlier deadline; RFC 7208 section 4.6.4 suggests at least 20
// seconds in total.
const SPFLookupTimeout = 20 * time.Second

// CheckSPF evaluates the SPF policy for the MAIL FROM identity (RFC 7208
// section 2.4): ip is the client, helo the name it gave, mailFrom the
// reverse path without angle brackets ("" for the null sender, in which
// case the HELO identity is checked as postmaster@helo). Every lookup goes
// through r, bounded by ctx, SPFLookupTimeout and the limits of section
// 4.6.4 (10 lookups, 2 void lookups). logger may be nil.
func CheckSPF(ctx context.Context, logger *slog.Logger, r Resolver, ip net.IP, helo, mailFrom string) SPFResult {
	res := SPFResult{Identity: "mailfrom"}
	local, domain := splitAddress(mailFrom)
	if mailFrom == "" {
		local, domain = "postmaster", helo
		res.Identity = "helo"
	} else if local == "" {
		local = "postmaster"
	}
	return checkSPF(ctx, logger, r, ip, helo, local, domain, res)
}

// CheckSPFHelo evaluates the SPF policy for the HELO identity (RFC 7208
// section 2.3), which RFC 7208 recommends checking too: its result can
// reject a client before MAIL FROM, and it is the only identity of bounces.
func CheckSPFHelo(ctx context.Context, logger *slog.Logger, r Resolver, ip net.IP, helo string) SPFResult {
	return checkSPF(ctx, logger, r, ip, helo, "postmaster", helo, SPFResult{Identity: "helo"})
}

// splitAddress splits at the last @; a string without one is all domain.
func splitAddress(addr string) (local, domain string) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return "", addr
	}
	return addr[:i], addr[i+1:]
}

func checkSPF(ctx context.Context, logger *slog.Logger, r Resolver, ip net.IP, helo, local, domain string, res SPFResult) SPFResult {
	if logger == nil {
		logger = discardLogger
	}
	domain = strings.TrimSuffix(domain, ".")
	res.Domain = domain
	res.Sender = local + "@" + domain
	if ip.To16() == nil {
		res.Status, res.Err = SPFPermError, fmt.Errorf("spf: invalid client address")
		return res
	}
	// Section 4.3: a domain that is not a valid multi-label name has no
	// policy to look up.
	if err := checkFQDN(domain); err != nil {
		res.Status, res.Err = SPFNone, err
		return res
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, SPFLookupTimeout)
		defer cancel()
	}
	env := &spfEnv{ip: ip, sender: res.Sender, helo: helo, now: time.Now(), resolver: r}
	t := &spfTracker{r: r, env: env, ctx: ctx}
	opts := []spf.Option{spf.WithContext(ctx), spf.WithResolver(t)}
	if logger.Enabled(ctx, slog.LevelDebug) {
		opts = append(opts, spf.WithTraceFunc(func(f string, a ...any) {
			logger.Debug("spf trace", "domain", domain, "step", fmt.Sprintf(f, a...))
		}))
	}
	status, err := spf.CheckHostWithSender(ip, helo, res.Sender, opts...)
	res.Status = SPFStatus(status)
	switch {
	case status == spf.PermError && t.syntaxErr != nil:
		res.Err = t.syntaxErr
	case status == spf.TempError || status == spf.PermError || status == spf.None:
		res.Err = err
	}
	if status == spf.Fail {
		res.Explanation = t.explanation(ctx, env, domain)
	}
	logger.Debug("spf", "identity", res.Identity, "domain", domain, "ip", ip.String(),
		"result", string(res.Status), "err", res.Err)
	return res
}

var discardLogger = slog.New(slog.DiscardHandler)

// checkFQDN accepts a domain name of at least two non-empty labels of at
// most 63 bytes, 253 bytes in all: what section 4.3 calls a valid FQDN.
func checkFQDN(d string) error {
	if d == "" || len(d) > maxDomainLen {
		return fmt.Errorf("spf: %q is not a valid domain name", d)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return fmt.Errorf("spf: %q is not a fully qualified domain name", d)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.ContainsAny(l, "[]:") {
			return fmt.Errorf("spf: %q is not a valid domain name", d)
		}
	}
	return nil
}

// spfTracker is the resolver the SPF library sees. It passes lookups
// through and parses every SPF record fetched with ParseSPF, so that a
// record with a syntax error anywhere is a permerror before any of its
// mechanisms is tried (RFC 7208 section 4.6), and it remembers the records
// so that the exp= of the record that decided a fail can be found.
//
// It also expands, before the library sees them, the domain-specs the
// library would get wrong: those using the p macro (which it always
// expands to "unknown") and those whose name contains a "/" (legal in a
// macro-literal, but taken by the library for a CIDR length); the latter
// are replaced by alias names that this resolver maps back.
type spfTracker struct {
	r         Resolver
	env       *spfEnv
	ctx       context.Context
	fetched   []spfFetch
	syntaxErr error
	aliases   map[string]string // alias → real name
}

// spfAliasSuffix ends alias names; .invalid can never be a real name
// (RFC 6761 section 6.4).
const spfAliasSuffix = ".spf-alias.invalid"

type spfFetch struct {
	domain string
	rec    *SPFRecord // nil when invalid
}

// spfInvalidStandIn replaces an invalid record in what the library sees: a
// record whose only term is unknown, which it turns into a permerror.
const spfInvalidStandIn = "v=spf1 -invalid-record"

func (t *spfTracker) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txts, err := t.r.LookupTXT(ctx, name)
	if err != nil {
		return txts, err
	}
	out := make([]string, len(txts))
	for i, txt := range txts {
		out[i] = txt
		if !IsSPFRecord(txt) {
			continue
		}
		rec, perr := ParseSPF(txt)
		if perr != nil {
			out[i] = spfInvalidStandIn
			if t.syntaxErr == nil {
				t.syntaxErr = fmt.Errorf("%s: %w", strings.TrimSuffix(name, "."), perr)
			}
		}
		t.fetched = append(t.fetched, spfFetch{domain: mockKey(name), rec: rec})
		if rec != nil {
			out[i] = t.rewrite(rec, txt, strings.TrimSuffix(name, "."))
		}
	}
	return out, nil
}

// rewrite returns txt, or when some domain-spec of rec needs it, the
// record with those domain-specs expanded (see spfTracker).
func (t *spfTracker) rewrite(rec *SPFRecord, txt, domain string) string {
	needs := func(spec string) bool {
		return strings.Contains(spec, "/") || strings.Contains(spec, "%{p") || strings.Contains(spec, "%{P")
	}
	changed := false
	fix := func(spec string) string {
		if !needs(spec) {
			return spec
		}
		name, err := t.env.expand(t.ctx, spec, domain, false)
		if err != nil {
			return spec
		}
		changed = true
		if strings.Contains(name, "/") {
			if t.aliases == nil {
				t.aliases = map[string]string{}
			}
			alias := fmt.Sprintf("a%d%s", len(t.aliases), spfAliasSuffix)
			t.aliases[alias] = name
			return alias
		}
		return strings.ReplaceAll(name, "%", "%%")
	}
	c := *rec
	c.Directives = append([]SPFDirective(nil), rec.Directives...)
	for i := range c.Directives {
		c.Directives[i].Domain = fix(c.Directives[i].Domain)
	}
	c.Redirect = fix(c.Redirect)
	if !changed {
		return txt
	}
	return c.String()
}

func (t *spfTracker) unalias(name string) string {
	if real, ok := t.aliases[mockKey(name)]; ok {
		return real
	}
	return name
}

func (t *spfTracker) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return t.r.LookupMX(ctx, t.unalias(name))
}

func (t *spfTracker) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return t.r.LookupIPAddr(ctx, t.unalias(host))
}

func (t *spfTracker) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return t.r.LookupAddr(ctx, addr)
}

func (t *spfTracker) record(domain string) (*SPFRecord, int) {
	var rec *SPFRecord
	n := 0
	for _, f := range t.fetched {
		if f.domain == domain {
			rec = f.rec
			n++
		}
	}
	return rec, n
}

// explanation returns the exp= text of the record that produced a fail:
// the checked domain's, or, when the evaluation went through redirect=,
// the target's (section 6.2: include does not carry exp over, redirect
// does). Any failure yields "": the explanation is optional.
func (t *spfTracker) explanation(ctx context.Context, env *spfEnv, domain string) string {
	domain = mockKey(domain)
	rec, _ := t.record(domain)
	for hops := 0; rec != nil && rec.Redirect != "" && hops < 10; hops++ {
		target, err := env.expand(ctx, rec.Redirect, domain, false)
		if err != nil {
			return ""
		}
		target = mockKey(target)
		next, n := t.record(target)
		if n == 0 {
			break
		}
		// A redirect target also named by an include of this record was
		// fetched for the include if it was fetched only once.
		if n == 1 && t.includes(ctx, env, rec, domain, target) {
			break
		}
		rec, domain = next, target
	}
	if rec == nil || rec.Exp == "" {
		return ""
	}
	name, err := env.expand(ctx, rec.Exp, domain, false)
	if err != nil || name == "" {
		return ""
	}
	txts, err := t.r.LookupTXT(ctx, name)
	if err != nil || len(txts) != 1 {
		return ""
	}
	text, err := env.expand(ctx, txts[0], domain, true)
	if err != nil {
		return ""
	}
	for i := 0; i < len(text); i++ {
		if text[i] < ' ' || text[i] > '~' {
			return ""
		}
	}
	return text
}

func (t *spfTracker) includes(ctx context.Context, env *spfEnv, rec *SPFRecord, domain, target string) bool {
	for _, d := range rec.Directives {
		if d.Mechanism != "include" {
			continue
		}
		if n, err := env.expand(ctx, d.Domain, domain, false); err == nil && mockKey(n) == target {
			return true
		}
	}
	return false
}

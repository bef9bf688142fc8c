package smtp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/mailagent/mailagent/dnsauth"
)

// SenderAuth runs dnsauth's sender authentication as the MX hooks: iprev
// at connect, SPF at MAIL FROM, DKIM and DMARC at the end of DATA. Its
// results end up in the delivered message's Authentication-Results field;
// its policies decide which failures are refused or sent to Junk.
type SenderAuth struct {
	// Resolver answers every lookup. Required. Wrap it with
	// dnsauth.WithTimeout so a slow DNS cannot stall a session.
	Resolver dnsauth.Resolver
	// RejectSPFFail refuses MAIL FROM when SPF says fail (550 5.7.23);
	// otherwise the result is only recorded.
	RejectSPFFail bool
	// RequirePTR refuses clients whose address has no PTR record at all
	// (550 5.7.25); otherwise iprev is only recorded.
	RequirePTR bool
	// DMARC says what a DMARC failure does; the zero value follows the
	// sending domain's published policy.
	DMARC dnsauth.DMARCMode
	// Logger receives lookup failures; nil discards.
	Logger *slog.Logger
}

// Checks returns the hooks for Options.Checks.
func (a *SenderAuth) Checks() Checks {
	return Checks{
		Connect: []ConnectChecker{senderAuthConnect{a}},
		Mail:    []MailChecker{senderAuthMail{a}},
		Message: []MessageChecker{senderAuthMessage{a}},
	}
}

func (a *SenderAuth) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

func remoteIP(env *Envelope) net.IP {
	switch addr := env.RemoteAddr.(type) {
	case *net.TCPAddr:
		return addr.IP
	case nil:
		return nil
	default:
		host, _, err := net.SplitHostPort(addr.String())
		if err != nil {
			return nil
		}
		return net.ParseIP(host)
	}
}

type senderAuthConnect struct{ a *SenderAuth }

// CheckConnect runs iprev. The HELO name is not known yet at connect, so
// the HELO match is not part of the verdict.
func (c senderAuthConnect) CheckConnect(ctx context.Context, env *Envelope) Verdict {
	ip := remoteIP(env)
	if ip == nil {
		return Verdict{}
	}
	r := dnsauth.CheckIPRev(ctx, c.a.Resolver, ip, env.Helo)
	res := AuthResult{Method: "iprev", Result: string(r.Status), Props: map[string]string{"policy.iprev": ip.String()}}
	if r.Err != nil {
		res.Reason = r.Err.Error()
	}
	v := Verdict{Results: []AuthResult{res}}
	if c.a.RequirePTR && !r.HasPTR && r.Status != dnsauth.IPRevTempError {
		v.Action = Reject
		v.Reply = &Error{Code: 550, EnhancedCode: [3]int{5, 7, 25}, Message: "Reverse DNS required: no PTR record for " + ip.String()}
	}
	return v
}

type senderAuthMail struct{ a *SenderAuth }

// CheckMail runs SPF on the MAIL FROM identity (the HELO identity for the
// null sender, as RFC 7208 section 2.4 says).
func (c senderAuthMail) CheckMail(ctx context.Context, env *Envelope) Verdict {
	ip := remoteIP(env)
	if ip == nil {
		return Verdict{}
	}
	r := dnsauth.CheckSPF(ctx, c.a.logger(), c.a.Resolver, ip, env.Helo, env.From)
	res := AuthResult{Method: "spf", Result: string(r.Status), Props: map[string]string{}}
	if r.Identity == "helo" {
		res.Props["smtp.helo"] = env.Helo
	} else {
		res.Props["smtp.mailfrom"] = r.Sender
	}
	if r.Err != nil {
		res.Reason = r.Err.Error()
	}
	v := Verdict{Results: []AuthResult{res}}
	if c.a.RejectSPFFail && r.Status == dnsauth.SPFFail {
		msg := "SPF: " + r.Domain + " does not designate " + ip.String() + " as permitted sender"
		if r.Explanation != "" {
			msg += ": " + r.Explanation
		}
		v.Action = Reject
		v.Reply = &Error{Code: 550, EnhancedCode: [3]int{5, 7, 23}, Message: msg}
	}
	return v
}

type senderAuthMessage struct{ a *SenderAuth }

// CheckMessage verifies DKIM signatures and evaluates DMARC with the SPF
// result recorded at MAIL FROM.
func (c senderAuthMessage) CheckMessage(ctx context.Context, env *Envelope, msg Body) Verdict {
	var v Verdict
	rc, err := msg.Open()
	if err != nil {
		return Verdict{Action: Reject, Reply: &Error{Code: 451, EnhancedCode: [3]int{4, 3, 0}, Message: "Local error reading the message"}}
	}
	defer rc.Close()
	dkims, err := dnsauth.VerifyDKIM(ctx, c.a.Resolver, rc)
	if err != nil {
		c.a.logger().Warn("DKIM verification failed", "id", env.ID, "err", err)
	}
	for _, d := range dkims {
		if d.Status == dnsauth.DKIMNone {
			continue
		}
		res := AuthResult{Method: "dkim", Result: string(d.Status), Props: map[string]string{
			"header.d": d.Domain, "header.s": d.Selector, "header.a": d.Algorithm,
		}}
		if d.HeaderB != "" {
			res.Props["header.b"] = d.HeaderB
		}
		if d.Err != nil {
			res.Reason = d.Err.Error()
		}
		v.Results = append(v.Results, res)
	}
	if len(v.Results) == 0 {
		v.Results = append(v.Results, AuthResult{Method: "dkim", Result: "none"})
	}

	head, err := readHeader(msg)
	if err != nil {
		return v
	}
	from, err := dnsauth.FromDomain(head)
	if err != nil {
		// RFC 7489 section 6.6.1: a message without exactly one From
		// domain cannot be evaluated; record it and let it through.
		v.Results = append(v.Results, AuthResult{Method: "dmarc", Result: "permerror", Reason: err.Error()})
		return v
	}
	d := dnsauth.EvaluateDMARC(ctx, c.a.Resolver, from, spfFromResults(env), dkims)
	res := AuthResult{Method: "dmarc", Result: string(d.Status), Props: map[string]string{"header.from": d.Domain}}
	if d.Policy != "" {
		res.Props["policy.dmarc"] = string(d.Policy)
	}
	v.Results = append(v.Results, res)
	switch d.Action(c.a.DMARC) {
	case dnsauth.DMARCReject:
		v.Action = Reject
		v.Reply = &Error{Code: 550, EnhancedCode: [3]int{5, 7, 1}, Message: d.RejectText()}
	case dnsauth.DMARCJunk:
		v.Action = Junk
	}
	return v
}

// spfFromResults rebuilds the SPF result the MAIL FROM hook recorded, which
// DMARC needs for its SPF alignment.
func spfFromResults(env *Envelope) dnsauth.SPFResult {
	for _, r := range env.Results {
		if r.Method != "spf" {
			continue
		}
		out := dnsauth.SPFResult{Status: dnsauth.SPFStatus(r.Result)}
		if s := r.Props["smtp.mailfrom"]; s != "" {
			out.Identity, out.Sender = "mailfrom", s
			out.Domain = s[strings.LastIndexByte(s, '@')+1:]
		} else if h := r.Props["smtp.helo"]; h != "" {
			out.Identity, out.Domain = "helo", h
		}
		return out
	}
	return dnsauth.SPFResult{Status: dnsauth.SPFNone}
}

// readHeader returns the message's header section (up to 256 KiB).
func readHeader(msg Body) ([]byte, error) {
	rc, err := msg.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf, err := io.ReadAll(io.LimitReader(rc, 256<<10))
	if err != nil {
		return nil, err
	}
	if i := strings.Index(string(buf), "\r\n\r\n"); i >= 0 {
		buf = buf[:i+2]
	}
	return buf, nil
}

// DKIMSigner signs submitted mail with dnsauth's Signer, for
// Options.Signer. Mail from a domain without keys goes out unsigned.
type DKIMSigner struct {
	Signer *dnsauth.Signer
}

// Sign implements Signer.
func (s DKIMSigner) Sign(ctx context.Context, env *Envelope, msg Body) ([]string, error) {
	rc, err := msg.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	sig, err := s.Signer.Sign(ctx, rc)
	if err != nil {
		if errors.Is(err, dnsauth.ErrNoDKIMKey) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, f := range strings.SplitAfter(sig, "\r\n") {
		if f == "" {
			continue
		}
		// Sign returns complete fields; continuation lines start with
		// whitespace and belong to the field before them.
		if (f[0] == ' ' || f[0] == '\t') && len(out) > 0 {
			out[len(out)-1] += f
			continue
		}
		out = append(out, f)
	}
	for i := range out {
		out[i] = strings.TrimSuffix(out[i], "\r\n")
	}
	return out, nil
}

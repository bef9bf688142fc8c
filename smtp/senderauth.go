package smtp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/internal/headerenc"
	"github.com/mailagent/mailagent/smtp/mail"
)

// SenderAuth runs dnsauth's sender authentication on an MX: iprev when
// the client introduces itself, SPF after MAIL, DKIM verification and
// DMARC at the end of DATA, and one Authentication-Results field with
// all of them. Put the same *SenderAuth in Checks.Connect, Checks.Mail
// and Checks.Message. Set the fields before use.
type SenderAuth struct {
	// Resolver answers the DNS queries. Required.
	Resolver dnsauth.Resolver
	// AuthServID names this host in Authentication-Results; empty means
	// the server's Options.Hostname (Envelope.Hostname), which is also
	// the name whose forged fields the server removes.
	AuthServID string
	// RequirePTR refuses clients whose address has no reverse name at all
	// (550 5.7.25, RFC 7372), as Postfix's reject_unknown_reverse_client_hostname;
	// a DNS failure defers them (450 4.7.25). Off, iprev is only recorded.
	RequirePTR bool
	// DMARC is the policy for messages failing DMARC; the zero value
	// follows the sender domain's published policy (reject refuses,
	// quarantine files in Junk).
	DMARC dnsauth.DMARCMode
	// RejectSPFFail refuses MAIL when SPF fails (550 5.7.23). Off, an SPF
	// fail is recorded and left to DMARC, as RFC 7489 section 10.1
	// recommends for domains that publish DMARC.
	RejectSPFFail bool
	// Logger receives check errors; nil discards.
	Logger *slog.Logger
}

// Keys of SenderAuth's entries in Envelope.Values.
type (
	iprevKey   struct{}
	authResKey struct{}
)

func (a *SenderAuth) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

// CheckConnect implements ConnectChecker: iprev (RFC 8601 section 3).
// The result is only recorded.
func (a *SenderAuth) CheckConnect(ctx context.Context, env *mail.Envelope) mail.Verdict {
	ip := net.ParseIP(addrIP(env.RemoteAddr))
	if ip == nil {
		return mail.Verdict{}
	}
	r := dnsauth.CheckIPRev(ctx, a.Resolver, ip, env.Helo)
	env.Values[iprevKey{}] = r
	if a.RequirePTR {
		switch {
		case r.Status == dnsauth.IPRevTempError:
			return mail.Verdict{Action: mail.Reject, Reply: &mail.Error{Code: 450, EnhancedCode: [3]int{4, 7, 25}, Message: "Reverse DNS lookup failed, try again later"}}
		case !r.HasPTR:
			return mail.Verdict{Action: mail.Reject, Reply: &mail.Error{Code: 550, EnhancedCode: [3]int{5, 7, 25}, Message: "Client address has no reverse DNS name"}}
		}
	}
	return mail.Verdict{}
}

// Checks returns a in every hook of Checks, ready for Options.Checks.
func (a *SenderAuth) Checks() mail.Checks {
	return mail.Checks{Connect: []mail.ConnectChecker{a}, Mail: []mail.MailChecker{a}, Message: []mail.MessageChecker{a}}
}

// CheckMail implements MailChecker: SPF (RFC 7208) for the MAIL FROM
// identity, or the HELO identity for the null sender.
func (a *SenderAuth) CheckMail(ctx context.Context, env *mail.Envelope) mail.Verdict {
	res := &dnsauth.AuthResults{}
	if r, ok := env.Values[iprevKey{}].(dnsauth.IPRevResult); ok {
		res.IPRev = &r
	}
	env.Values[authResKey{}] = res
	ip := net.ParseIP(addrIP(env.RemoteAddr))
	if ip == nil {
		return mail.Verdict{}
	}
	spf := dnsauth.CheckSPF(ctx, a.logger(), a.Resolver, ip, env.Helo, env.From)
	res.SPF = &spf
	if a.RejectSPFFail && spf.Status == dnsauth.SPFFail {
		msg := "SPF validation failed for " + headerenc.Text(spf.Domain)
		if spf.Explanation != "" {
			msg += ": " + headerenc.Text(spf.Explanation)
		}
		return mail.Verdict{Action: mail.Reject, Reply: &mail.Error{Code: 550, EnhancedCode: [3]int{5, 7, 23}, Message: msg}}
	}
	return mail.Verdict{}
}

// CheckMessage implements MessageChecker: DKIM (RFC 6376) and DMARC (RFC
// 7489), then the Authentication-Results field.
func (a *SenderAuth) CheckMessage(ctx context.Context, env *mail.Envelope, msg mail.Body) mail.Verdict {
	res, _ := env.Values[authResKey{}].(*dnsauth.AuthResults)
	if res == nil {
		res = &dnsauth.AuthResults{}
	}
	var v mail.Verdict
	if r, err := msg.Open(); err == nil {
		// One call, so that the DMARC record lookups run while the DKIM
		// keys are looked up: a slow resolver costs the longer of the two.
		m, err := dnsauth.VerifyMessage(ctx, a.Resolver, r, res.SPF)
		r.Close()
		if err != nil {
			a.logger().Info("DKIM verification not done", "id", env.ID, "err", err)
		} else {
			res.DKIM, res.DKIMChecked = m.DKIM, true
			if m.FromErr != nil {
				a.logger().Info("no DMARC evaluation: no single From domain", "id", env.ID, "err", m.FromErr)
			}
			res.DMARC = m.DMARC
		}
	}
	if dm := res.DMARC; dm != nil {
		switch dm.Action(a.DMARC) {
		case dnsauth.DMARCReject:
			text := strings.TrimPrefix(dm.RejectText(), "5.7.1 ")
			v.Action, v.Reply = mail.Reject, &mail.Error{Code: 550, EnhancedCode: [3]int{5, 7, 1}, Message: text}
		case dnsauth.DMARCJunk:
			v.Action = mail.Junk
		}
	}
	id := a.AuthServID
	if id == "" {
		id = env.Hostname
	}
	res.UTF8 = env.SMTPUTF8
	v.Headers = []string{strings.TrimSuffix(res.Header(id), "\r\n")}
	return v
}

// DKIMSigner is the submission server's Signer wired to dnsauth: it
// signs each message with the keys of its From domain (or the closest
// parent domain with keys). Mail from a domain without keys, or without
// a single From address, goes out unsigned.
type DKIMSigner struct {
	// Signer holds the keys. Required.
	Signer *dnsauth.Signer
	// Logger receives signing failures; nil discards.
	Logger *slog.Logger
}

// Sign implements Signer.
func (s DKIMSigner) Sign(ctx context.Context, env *mail.Envelope, msg mail.Body) ([]string, error) {
	r, err := msg.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	sig, err := s.Signer.Sign(ctx, r)
	switch {
	case err == nil:
		// One signature per key: one header field each, as Signer
		// requires.
		return splitFields(sig), nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case !errors.Is(err, dnsauth.ErrNoDKIMKey) && s.Logger != nil:
		s.Logger.Warn("message sent unsigned", "id", env.ID, "err", err)
	}
	return nil, nil
}

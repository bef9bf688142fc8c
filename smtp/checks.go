package smtp

import (
	"context"
	"sort"
	"strings"

	"github.com/mailagent/mailagent/internal/headerenc"
)

// Action is what a check decides to do with a connection or message.
type Action int

const (
	// Accept lets the message through, with any headers and results the
	// verdict carries.
	Accept Action = iota
	// Reject refuses it with Verdict.Reply (default 550 5.7.1).
	Reject
	// Junk accepts it but files local copies in the Junk folder.
	Junk
)

// AuthResult is one method's result as written in an
// Authentication-Results header field (RFC 8601), e.g.
// spf=pass smtp.mailfrom=example.org.
type AuthResult struct {
	// Method is the registered method name: "iprev", "spf", "dkim",
	// "dmarc", ...
	Method string
	// Result is the method's result keyword: "pass", "fail", "softfail",
	// "neutral", "none", "temperror", "permerror", "policy".
	Result string
	// Reason is an optional human-readable explanation.
	Reason string
	// Props are the method's properties keyed "ptype.property", e.g.
	// "smtp.mailfrom", "header.d", "policy.iprev".
	Props map[string]string
}

// Verdict is a check's answer.
type Verdict struct {
	Action Action
	// Reply is the refusal sent for Reject; nil means 550 5.7.1. A 4xx
	// reply (a DNS failure worth retrying) is allowed too.
	Reply *Error
	// Results are appended to the envelope's results and end up in the
	// Authentication-Results header field of the delivered message.
	Results []AuthResult
	// Headers are complete header fields ("Name: value", folded with
	// CRLF and whitespace when long, without the final CRLF), one field
	// per element, prepended to the delivered message. A line break in
	// an element that is not a fold is dropped (see headerenc.Field):
	// an element never becomes two fields.
	Headers []string
}

// ConnectChecker runs when a client introduces itself (HELO, EHLO or
// LHLO), with the client's address and HELO name in the envelope; iprev
// (RFC 8601 section 3) plugs in here. A Reject refuses the greeting.
type ConnectChecker interface {
	CheckConnect(ctx context.Context, env *Envelope) Verdict
}

// MailChecker runs after MAIL FROM with env.From set; SPF (RFC 7208)
// plugs in here. A Reject refuses MAIL.
type MailChecker interface {
	CheckMail(ctx context.Context, env *Envelope) Verdict
}

// MessageChecker runs at the end of DATA with the whole message as
// received; DKIM verification (RFC 6376) and DMARC (RFC 7489) plug in
// here, and see the connect and MAIL results in env.Results. A Reject
// refuses the message, nothing is stored.
type MessageChecker interface {
	CheckMessage(ctx context.Context, env *Envelope, msg Body) Verdict
}

// Signer signs outgoing mail on the submission server; DKIM signing
// plugs in here. It returns header fields (as Verdict.Headers, one field
// per element) to
// prepend to msg, which already carries the Message-ID and Date added on
// submission. An error refuses the message with a temporary failure
// unless it is an *Error.
type Signer interface {
	Sign(ctx context.Context, env *Envelope, msg Body) (headers []string, err error)
}

// Checks groups the hooks a server runs; nil members are skipped.
type Checks struct {
	Connect []ConnectChecker
	Mail    []MailChecker
	Message []MessageChecker
}

// defaultReject is the reply for a Reject verdict without its own.
var defaultReject = &Error{Code: 550, EnhancedCode: [3]int{5, 7, 1}, Message: "Message refused by policy"}

// apply records v on env and returns the refusal to send, if any.
func (v Verdict) apply(env *Envelope, extra *[]string) error {
	env.Results = append(env.Results, v.Results...)
	*extra = append(*extra, v.Headers...)
	switch v.Action {
	case Reject:
		if v.Reply != nil {
			return v.Reply
		}
		return defaultReject
	case Junk:
		env.Junk = true
	}
	return nil
}

// authResultsHeader formats the Authentication-Results header field for
// results, as authserv-id hostname (RFC 8601 section 2.2).
func authResultsHeader(hostname string, results []AuthResult) string {
	var b strings.Builder
	b.WriteString("Authentication-Results: ")
	b.WriteString(headerenc.Value(hostname))
	if len(results) == 0 {
		b.WriteString("; none")
		return b.String()
	}
	for _, r := range results {
		b.WriteString(";\r\n\t")
		b.WriteString(headerenc.Value(r.Method))
		b.WriteByte('=')
		b.WriteString(headerenc.Value(r.Result))
		if r.Reason != "" {
			b.WriteString(" reason=")
			b.WriteString(headerenc.Value(r.Reason))
		}
		keys := make([]string, 0, len(r.Props))
		for k := range r.Props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteByte(' ')
			b.WriteString(headerenc.Value(k))
			b.WriteByte('=')
			b.WriteString(headerenc.Value(r.Props[k]))
		}
	}
	return b.String()
}

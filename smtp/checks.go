package smtp

import (
	"github.com/mailagent/mailagent/smtp/mail"
	"sort"
	"strings"

	"github.com/mailagent/mailagent/internal/headerenc"
)

// defaultReject is the reply for a Reject verdict without its own.
var defaultReject = &mail.Error{Code: 550, EnhancedCode: [3]int{5, 7, 1}, Message: "Message refused by policy"}

// applyVerdict records v on env and returns the refusal to send, if any.
func applyVerdict(v mail.Verdict, env *mail.Envelope, extra *[]string) error {
	env.Results = append(env.Results, v.Results...)
	*extra = append(*extra, v.Headers...)
	switch v.Action {
	case mail.Reject:
		if v.Reply != nil {
			return v.Reply
		}
		return defaultReject
	case mail.Junk, mail.Quarantine:
		env.Junk = true
	case mail.Discard:
		// Outside the message stage there is nothing to discard yet:
		// refusing is what a milter's discard at RCPT amounts to too.
		return defaultReject
	}
	return nil
}

// authResultsHeader formats the Authentication-Results header field for
// results, as authserv-id hostname (RFC 8601 section 2.2).
func authResultsHeader(hostname string, results []mail.AuthResult) string {
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

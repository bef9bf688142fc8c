package mail

import (
	"context"
	"strconv"
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
	// Discard answers the client as if the message were accepted and
	// delivers it nowhere (a milter's SMFIR_DISCARD). Only the message
	// stage (FilterSession.Message) may discard; earlier it is a Reject.
	Discard
	// Quarantine accepts the message and sets it apart (a milter's
	// SMFIR_QUARANTINE): into Options.Quarantine when set (held in the
	// queue), else local copies go to the Junk folder; Verdict.Reason is
	// logged with the transaction ID.
	Quarantine
)

// EditKind names one change a filter makes to a message or its
// envelope, the milter protocol's modification actions.
type EditKind int

const (
	// AddHeader appends the field Name: Value at the end of the header.
	AddHeader EditKind = iota + 1
	// InsertHeader inserts Name: Value after the Index-th field of the
	// header (0: before the first).
	InsertHeader
	// ChangeHeader replaces the value of the Index-th (from 1) field
	// named Name (case-insensitive); an empty Value deletes the field,
	// and a field that is not there is added at the end.
	ChangeHeader
	// ReplaceBody replaces everything after the header with Body (CRLF
	// line endings).
	ReplaceBody
	// AddRcpt adds the recipient Addr.
	AddRcpt
	// DelRcpt removes the recipient Addr.
	DelRcpt
	// ChangeFrom sets the reverse path to Addr.
	ChangeFrom
)

// Edit is one change a message-stage filter makes. Header values are as
// they follow the colon; a value whose lines are folded with LF or CRLF
// is written with CRLF.
type Edit struct {
	Kind  EditKind
	Name  string
	Value string
	Index int
	Body  []byte
	Addr  string
}

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
	// Edits change the message and its envelope, in order. Only the
	// message stage of a Filter may edit; the edits of every filter are
	// applied before the next filter sees the message, so each sees what
	// the ones before it made.
	Edits []Edit
	// Reason explains a Junk or Quarantine verdict in the log.
	Reason string
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

// Filter follows one transaction stage by stage, the way a milter
// does: it is opened at MAIL FROM (with the connection's address and
// HELO name in env, so it also sees the connect and HELO stages there),
// sees each RCPT TO, then the whole message at the end of DATA, and may
// change the message and its envelope (Verdict.Edits). The milter
// client (Milter) is one; a Go program's own filter is another of the
// same kind. Filters run on every role whose Options.Checks lists them,
// after the MX's connect, MAIL and message checks, in the order listed.
type Filter interface {
	// Open starts following a transaction. A Reject refuses MAIL; a nil
	// session with an Accept verdict means the filter has nothing to do
	// with this transaction.
	Open(ctx context.Context, env *Envelope) (FilterSession, Verdict)
}

// SessionFilter is a Filter that follows a whole SMTP session, as
// Postfix keeps one connection to each milter per SMTP connection: the
// server calls Connect once when the client introduces itself and opens
// every transaction of the session from the ConnFilter it returns, then
// closes that at the end of the session. A server that does not know
// the session (a plain Filter user) calls Open as for any Filter.
type SessionFilter interface {
	Filter
	// Connect starts following a session; env holds the client's
	// address, HELO name and TLS state, without a transaction. It
	// never refuses: a failure is reported by the ConnFilter's Open.
	Connect(ctx context.Context, env *Envelope) ConnFilter
}

// ConnFilter is a SessionFilter's view of one SMTP session.
type ConnFilter interface {
	// Open starts following one transaction of the session, as
	// Filter.Open does; the session's FilterSession.Close ends that
	// transaction only.
	Open(ctx context.Context, env *Envelope) (FilterSession, Verdict)
	// Close ends the session; it runs once, whatever happened.
	Close() error
}

// FilterSession is a Filter's view of one transaction.
type FilterSession interface {
	// Rcpt runs for each RCPT TO before the recipient is resolved; a
	// Reject refuses that recipient only.
	Rcpt(ctx context.Context, env *Envelope, rcpt string) Verdict
	// Message runs at the end of DATA with the message as the earlier
	// checks and filters left it (this server's Received and
	// Authentication-Results fields included).
	Message(ctx context.Context, env *Envelope, msg Body) Verdict
	// Close ends the session; it runs once, whatever happened.
	Close() error
}

// Checks groups the hooks a server runs; nil members are skipped. The
// order on the MX is fixed: forged Authentication-Results fields with
// this host's authserv-id are stripped, the Connect, Mail and Message
// checks run (SPF, DKIM, DMARC, iprev and their Authentication-Results
// field), then the Filters in order, then (submission) the Signer, so
// that a signature covers what filters changed.
type Checks struct {
	Connect []ConnectChecker
	Mail    []MailChecker
	Message []MessageChecker
	// Filters run on every role (Postfix's smtpd_milters are one
	// server's list; each server has its own Options.Checks).
	Filters []Filter
}

// String names an action in logs.
func (a Action) String() string {
	switch a {
	case Accept:
		return "accept"
	case Reject:
		return "reject"
	case Junk:
		return "junk"
	case Discard:
		return "discard"
	case Quarantine:
		return "quarantine"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

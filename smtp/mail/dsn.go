package mail

import "context"

// Notify is the set of conditions a client asked to be notified of for
// one recipient, the NOTIFY parameter of RCPT (RFC 3461 section 4.1).
// Zero means the parameter was not given: failures and delays are
// reported, as RFC 3461 leaves to the MTA and as it was before DSN.
type Notify uint8

// The NOTIFY values.
const (
	NotifyNever Notify = 1 << iota
	NotifySuccess
	NotifyFailure
	NotifyDelay
)

// Failure reports whether a failed delivery is to be notified.
func (n Notify) Failure() bool { return n == 0 || n&NotifyFailure != 0 }

// Delay reports whether a delayed delivery is to be notified.
func (n Notify) Delay() bool { return n == 0 || n&NotifyDelay != 0 }

// RcptDSN is what a client asked of delivery status notifications for
// one recipient (RFC 3461 section 4): NOTIFY, and ORCPT's address type
// ("rfc822" or "utf-8") and decoded address, written back as
// Original-Recipient in a notification.
type RcptDSN struct {
	Notify    Notify
	ORcptType string
	ORcpt     string
}

type rcptDSNKey struct{}

// WithRcptDSN returns ctx carrying d for the AddRecipient call it is
// passed to: the server gives each recipient's DSN parameters this way,
// and a router passes the context on to the destinations the recipient
// resolves to, so that a forwarded recipient keeps its original one.
func WithRcptDSN(ctx context.Context, d RcptDSN) context.Context {
	return context.WithValue(ctx, rcptDSNKey{}, d)
}

// RcptDSNFrom returns the DSN parameters ctx carries, the zero value if
// none.
func RcptDSNFrom(ctx context.Context) RcptDSN {
	d, _ := ctx.Value(rcptDSNKey{}).(RcptDSN)
	return d
}

// Success reports whether a successful delivery (or a relay to a next
// hop that will not notify) is to be notified: only when asked for.
func (n Notify) Success() bool { return n&NotifySuccess != 0 }

// Success is a recipient whose copy was delivered for good, for the
// notification its NOTIFY=SUCCESS asked for.
type Success struct {
	Rcpt string
	DSN  RcptDSN
}

// SuccessNotifier is implemented by a Bouncer that also writes success
// notifications (RFC 3461 section 6.2, Action: delivered): the queue.
// The Router uses it once a message's local copies are committed, for
// the recipients that asked NOTIFY=SUCCESS.
type SuccessNotifier interface {
	// NotifyDelivered prepares one notification to env.From naming every
	// recipient in delivered, quoting body's header. The Delivery
	// returned has had its recipient and Body; the caller commits it.
	NotifyDelivered(ctx context.Context, env *Envelope, body Body, delivered []Success) (Delivery, error)
}

package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"maps"
	"net"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// Error is a protocol error with an SMTP reply code and an RFC 3463
// enhanced status code. Targets return it to give a client a precise
// answer; Temporary reports whether the code is a 4xx.
type Error = gosmtp.SMTPError

// Envelope is what a message carries besides its content, shared by every
// role (MX, submission, LMTP) and every delivery target.
type Envelope struct {
	// ID identifies the transaction in logs and in the Received header.
	ID string
	// From is the reverse path; empty for the null sender (bounces).
	From string
	// Recipients are the forward paths accepted so far.
	Recipients []string
	// RemoteAddr is the client's address; nil for locally generated mail.
	RemoteAddr net.Addr
	// Helo is the name the client gave in HELO, EHLO or LHLO.
	Helo string
	// Hostname is the receiving server's name (Options.Hostname), the
	// authserv-id of its Authentication-Results fields.
	Hostname string
	// TLS is the connection's TLS state, nil when it was not encrypted.
	TLS *tls.ConnectionState
	// AuthUser is the authenticated user (submission), empty otherwise.
	AuthUser string
	// AuthMechanism is the SASL mechanism AuthUser logged in with
	// ("PLAIN", "LOGIN", ...), empty otherwise.
	AuthMechanism string
	// Generated marks a message this system wrote itself (a delivery
	// status notification): like an authenticated user's, it may go to
	// any domain.
	Generated bool
	// Received is when the transaction started.
	Received time.Time
	// SMTPUTF8 and EightBitMIME record the client's MAIL parameters.
	SMTPUTF8     bool
	EightBitMIME bool
	// DSNReturn is MAIL's RET parameter (RFC 3461 section 4.3): "FULL"
	// to have the whole message returned in a failure notification,
	// "HDRS" or empty for its header only.
	DSNReturn string
	// EnvID is MAIL's ENVID parameter (RFC 3461 section 4.4), decoded:
	// written back as Original-Envelope-Id in a notification.
	EnvID string
	// Results are the sender-authentication results of the checks run so
	// far (iprev, SPF, DKIM, DMARC), in the order they ran.
	Results []AuthResult
	// Junk is set by a check that judged the message spam: local targets
	// file it in the Junk folder instead of INBOX.
	Junk bool
	// Values carries what a check leaves for later checks of the same
	// transaction (the SPF result DMARC needs, say), keyed like context
	// values by a type the check owns. Values set at connect time are
	// copied into every transaction of the connection. Never nil in a
	// check.
	Values map[any]any
}

// Body is a message's content (header and body, CRLF line endings) that
// can be read any number of times, once per copy.
type Body interface {
	// Open returns a new reader positioned at the start of the message.
	Open() (io.ReadCloser, error)
	// Len is the message size in bytes.
	Len() int64
}

// Target receives messages: the local Maildir, the outbound queue, an
// LMTP or SMTP transport, or an embedder's own implementation.
type Target interface {
	// Start begins a delivery for env. Recipients are added afterwards.
	Start(ctx context.Context, env *Envelope) (Delivery, error)
}

// Delivery is one message on its way into a Target, in two phases:
// recipients and body first, then Commit makes it durable and visible (or
// Abort discards it). Nothing is visible to readers before Commit returns,
// and a Commit that returned nil has survived a crash.
type Delivery interface {
	// AddRecipient adds one recipient; an error (typically *Error) refuses
	// that recipient only.
	AddRecipient(ctx context.Context, rcpt string) error
	// Body hands over the content for every recipient added.
	Body(ctx context.Context, body Body) error
	// Commit makes the delivery durable and visible.
	Commit(ctx context.Context) error
	// Abort discards everything done so far; it is safe after a failed
	// Body or Commit.
	Abort(ctx context.Context) error
}

// StatusCollector receives one result per recipient, for LMTP.
// It has go-smtp's StatusCollector method set, so go-smtp's collector
// can be passed straight through.
type StatusCollector interface {
	SetStatus(rcpt string, err error)
}

// PartialDelivery is an optional Delivery extension for targets that can
// succeed for some recipients and fail for others after the body (LMTP's
// per-recipient replies). Callers use it instead of Body when present.
//
// BodyNonAtomic calls status.SetStatus exactly once for every recipient
// added with AddRecipient. The caller then calls Commit as usual: a
// recipient given a nil status is delivered once Commit returns nil, and
// a failing Commit fails every recipient that had a nil status.
type PartialDelivery interface {
	Delivery
	BodyNonAtomic(ctx context.Context, status StatusCollector, body Body)
}

// Withdrawer is an optional Delivery extension: between Body (or
// BodyNonAtomic) and Commit, Withdraw takes back one recipient's copy so
// that Commit delivers nothing to it. The Router uses it over LMTP, where
// a recipient that forwards to several destinations and fails for one of
// them must get none of the others. An error means the copy could not be
// taken back (the caller then aborts the whole Delivery).
type Withdrawer interface {
	Withdraw(ctx context.Context, rcpt string) error
}

// Failure is a recipient that was not delivered, and the reply saying
// why (typically an *Error).
type Failure struct {
	Rcpt string
	Err  error
	// DSN is what the client asked of notifications for the recipient
	// (RCPT's NOTIFY and ORCPT): the notification names its original
	// recipient, and one whose NOTIFY excludes failures is not reported.
	DSN RcptDSN
}

// Bouncer is implemented by a Target that can notify a sender of
// recipients that failed after their message was accepted: the queue,
// with its delivery status notifications (RFC 3464). The Router uses it
// when it answers 250 for a message some of whose recipients failed for
// good after DATA (a mailbox over quota with this message, say), as
// Postfix bounces them.
type Bouncer interface {
	// Bounce prepares the notification to env.From that failed were not
	// delivered, quoting body's header. The Delivery returned has had
	// its recipient and Body: the caller commits it together with the
	// message it is accepting, or aborts it with that message.
	Bounce(ctx context.Context, env *Envelope, body Body, failed []Failure) (Delivery, error)
}

// BytesBody returns a Body holding b, which must not change afterwards.
func BytesBody(b []byte) Body { return bytesBody(b) }

type bytesBody []byte

func (b bytesBody) Open() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (b bytesBody) Len() int64 { return int64(len(b)) }

// IsPermanent reports whether err is a permanent (5xx) reply; anything
// that is not a typed reply is a system failure, hence temporary.
func IsPermanent(err error) bool {
	var se *Error
	return errors.As(err, &se) && se.Code >= 500
}

// StatusMap is a StatusCollector that keeps every recipient's result,
// for a caller of PartialDelivery.BodyNonAtomic. It is safe for
// concurrent use; the zero value is ready.
type StatusMap struct {
	mu sync.Mutex
	m  map[string]error
}

// SetStatus implements StatusCollector.
func (s *StatusMap) SetStatus(rcpt string, err error) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]error{}
	}
	s.m[rcpt] = err
	s.mu.Unlock()
}

// Results returns the results set so far, by recipient; the map is a
// copy.
func (s *StatusMap) Results() map[string]error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

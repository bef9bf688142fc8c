package smtp

import (
	"context"
	"crypto/tls"
	"io"
	"net"
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
	// TLS is the connection's TLS state, nil when it was not encrypted.
	TLS *tls.ConnectionState
	// AuthUser is the authenticated user (submission), empty otherwise.
	AuthUser string
	// Received is when the transaction started.
	Received time.Time
	// SMTPUTF8 and EightBitMIME record the client's MAIL parameters.
	SMTPUTF8     bool
	EightBitMIME bool
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
type StatusCollector interface {
	SetStatus(rcpt string, err error)
}

// PartialDelivery is an optional Delivery extension for targets that can
// succeed for some recipients and fail for others after the body (LMTP's
// per-recipient replies). The router uses it instead of Body when present.
type PartialDelivery interface {
	Delivery
	BodyNonAtomic(ctx context.Context, status StatusCollector, body Body)
}

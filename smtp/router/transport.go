package router

import (
	"context"

	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

// Transports opens the next hops named by the transport table (see
// store.ParseTransport): an LMTP client, or an SMTP client to a smart
// host, usually from the outbound package and in front of its queue so
// that nothing acknowledged is lost. The router asks only for "lmtp"
// entries and "smtp" entries with a host; "smtp:" without one means
// ordinary MX routing, which is the queue's job.
type Transports interface {
	Transport(ctx context.Context, t store.Transport) (mail.Target, error)
}

// TransportsFunc adapts a function to Transports.
type TransportsFunc func(ctx context.Context, t store.Transport) (mail.Target, error)

// Transport implements Transports.
func (f TransportsFunc) Transport(ctx context.Context, t store.Transport) (mail.Target, error) {
	return f(ctx, t)
}

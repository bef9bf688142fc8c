package queue

import (
	"context"

	"github.com/mailagent/mailagent/smtp/outbound"
)

// Courier carries the queue's messages to their next hops. The queue
// needs no more of a mail client than this, so a program can give it
// its own (a relay of its own, a test double); Outbound makes one of an
// *outbound.Client.
type Courier interface {
	// Open connects to hop. An error (read with outbound.AsError) fails
	// every message waiting for hop alike.
	Open(ctx context.Context, hop outbound.NextHop) (Conn, error)
}

// Conn is one connection a Courier opened, reused from message to
// message while it stays usable.
type Conn interface {
	// Send delivers m and returns one result per recipient, in order.
	Send(ctx context.Context, m *outbound.Message) []outbound.Result
	// Usable reports whether another message may go over the connection.
	Usable() bool
	Close() error
}

// Outbound returns c as a Courier.
func Outbound(c *outbound.Client) Courier { return clientCourier{c} }

type clientCourier struct{ c *outbound.Client }

func (cc clientCourier) Open(ctx context.Context, hop outbound.NextHop) (Conn, error) {
	cn, err := cc.c.Open(ctx, hop)
	if cn == nil {
		// Not a typed nil: the queue tests the Conn against nil.
		return nil, err
	}
	return cn, err
}

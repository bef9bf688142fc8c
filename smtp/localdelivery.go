package smtp

import (
	"context"
	"errors"
	"log/slog"

	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

var (
	errMailboxFull = &Error{Code: 552, EnhancedCode: [3]int{5, 2, 2}, Message: "Mailbox full"}
	errTooBig      = &Error{Code: 552, EnhancedCode: [3]int{5, 3, 4}, Message: "Message too big for the mailbox"}
	errLocalTemp   = &Error{Code: 451, EnhancedCode: [3]int{4, 3, 0}, Message: "Local delivery failed, try again later"}
)

// LocalDelivery is the Target that delivers into local users' Maildirs
// through a maildir.Store. Recipients are user addresses; a message
// judged Junk goes to the Junk folder. Set the fields before first use.
type LocalDelivery struct {
	// Maildirs stores the messages. Required.
	Maildirs *maildir.Store
	// Directory finds each user's Maildir path and quota. Required.
	Directory store.Directory
	// Logger receives delivery failures; nil discards.
	Logger *slog.Logger
}

// Start implements Target.
func (t *LocalDelivery) Start(ctx context.Context, env *Envelope) (Delivery, error) {
	return &localDelivery{t: t, env: env}, nil
}

type localDelivery struct {
	t     *LocalDelivery
	env   *Envelope
	users []*store.User
	body  Body
}

// AddRecipient implements Delivery: the user must exist and be enabled.
func (d *localDelivery) AddRecipient(ctx context.Context, rcpt string) error {
	u, err := d.t.Directory.LookupUser(ctx, rcpt)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errUnknownUser
	case err != nil:
		d.logger().Warn("user lookup failed", "rcpt", rcpt, "err", err)
		return errTempLookup
	case u.Disabled:
		return errUnknownUser
	}
	d.users = append(d.users, u)
	return nil
}

// Body implements Delivery; the copies are written by Commit.
func (d *localDelivery) Body(ctx context.Context, body Body) error {
	d.body = body
	return nil
}

// Commit implements Delivery: maildir's Deliver makes each copy durable
// (tmp, fsync, rename, directory fsync) before returning.
func (d *localDelivery) Commit(ctx context.Context) error {
	if d.body == nil {
		return errors.New("smtp: local delivery committed without a body")
	}
	folder := "INBOX"
	if d.env.Junk {
		folder = "Junk"
	}
	for _, u := range d.users {
		r, err := d.body.Open()
		if err != nil {
			return err
		}
		opts := &maildir.DeliverOptions{
			CreateFolder: true,
			Quota:        &maildir.Quota{Bytes: u.QuotaBytes, Messages: u.QuotaMessages},
		}
		_, err = d.t.Maildirs.Deliver(ctx, u.Maildir, folder, r, opts)
		r.Close()
		switch {
		case err == nil:
		case errors.Is(err, maildir.ErrOverQuota):
			return errMailboxFull
		case errors.Is(err, maildir.ErrTooLarge):
			return errTooBig
		default:
			d.logger().Error("local delivery failed", "id", d.env.ID, "user", u.Address, "err", err)
			return errLocalTemp
		}
	}
	return nil
}

// Abort implements Delivery: nothing was written before Commit.
func (d *localDelivery) Abort(ctx context.Context) error { return nil }

func (d *localDelivery) logger() *slog.Logger {
	if d.t.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.t.Logger
}

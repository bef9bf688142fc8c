package queue

import (
	"context"
	"errors"
	"os"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/smtp/mail"
)

// ErrHeld is returned by RetryNow for a held message: Release it first.
var ErrHeld = errors.New("queue: message is on hold")

// Info describes a queued message.
type Info struct {
	ID          string
	From        string
	Arrived     time.Time
	NextAttempt time.Time
	Attempts    int
	Size        int64
	Held        bool
	// Active is set while a delivery attempt is in progress; the other
	// fields are then as of the attempt's start.
	Active     bool
	Recipients []RecipientInfo
}

// RecipientInfo is one recipient of a queued message.
type RecipientInfo struct {
	Address string
	State   State
	// Err is the last failure, nil if none.
	Err *mail.Error
	// Remote names the server that gave the last reply.
	Remote      string
	LastAttempt time.Time
	// Attempts are the recipient's delivery attempts, oldest first (the
	// last few when there were many).
	Attempts []Attempt
}

// Attempt is one delivery attempt for one recipient.
type Attempt struct {
	Time time.Time
	// Remote names the server that replied, as "host[address]"; empty
	// when none was reached and the reply is a local one.
	Remote string
	// TLS is the connection's TLS version ("TLS1.3"), empty in clear.
	TLS string
	// Reply is the server's reply, or the local reason.
	Reply mail.Error
}

func (q *Queue) info(m *meta) *Info {
	in := &Info{ID: m.ID, From: m.From, Arrived: m.Arrived, NextAttempt: m.NextAttempt,
		Attempts: m.Attempts, Size: m.Size, Held: m.Held}
	for _, r := range m.Recipients {
		ri := RecipientInfo{Address: r.Addr, State: r.State, Remote: r.Remote, LastAttempt: r.Last}
		if r.Code >= 400 {
			ri.Err = &mail.Error{Code: r.Code, EnhancedCode: gosmtp.EnhancedCode(r.Enhanced), Message: r.Reply}
		}
		for _, a := range r.History {
			ri.Attempts = append(ri.Attempts, Attempt{Time: a.At, Remote: a.Remote, TLS: a.TLS,
				Reply: mail.Error{Code: a.Code, EnhancedCode: gosmtp.EnhancedCode(a.Enhanced), Message: a.Reply}})
		}
		in.Recipients = append(in.Recipients, ri)
	}
	q.mu.Lock()
	_, in.Active = q.active[m.ID]
	q.mu.Unlock()
	return in
}

// Inspect returns the state of message id.
func (q *Queue) Inspect(ctx context.Context, id string) (*Info, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	m, err := q.spool.readMeta(id)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return q.info(m), nil
}

// List calls fn for every queued message, reading the spool as it goes:
// memory use does not grow with the queue. A message that disappears
// while listing is skipped; an error from fn stops the walk and is
// returned.
func (q *Queue) List(ctx context.Context, fn func(*Info) error) error {
	return q.spool.scan(false, func(id string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := q.spool.readMeta(id)
		if err != nil {
			return nil
		}
		return fn(q.info(m))
	})
}

// RetryNow makes message id due at once, as postqueue -i does.
func (q *Queue) RetryNow(ctx context.Context, id string) error {
	err := q.modify(ctx, id, func(a *activeMsg) {}, func(m *meta) error {
		if m.Held {
			return ErrHeld
		}
		q.sched.set(id, q.opts.now())
		return nil
	})
	if err == nil {
		q.Wake()
	}
	return err
}

// Hold keeps message id from being delivered until Release, as
// postsuper -h does. A message being delivered is held once its attempt
// ends.
func (q *Queue) Hold(ctx context.Context, id string) error {
	return q.modify(ctx, id, func(a *activeMsg) { a.hold = true }, func(m *meta) error {
		if m.Held {
			return nil
		}
		m.Held = true
		if err := q.spool.writeMeta(m); err != nil {
			return err
		}
		q.sched.remove(id)
		return nil
	})
}

// Release puts a held message back in the schedule, due at once.
func (q *Queue) Release(ctx context.Context, id string) error {
	err := q.modify(ctx, id, func(a *activeMsg) { a.hold = false }, func(m *meta) error {
		if !m.Held {
			return nil
		}
		m.Held = false
		m.NextAttempt = q.opts.now()
		if err := q.spool.writeMeta(m); err != nil {
			return err
		}
		q.sched.set(id, m.NextAttempt)
		return nil
	})
	if err == nil {
		q.Wake()
	}
	return err
}

// Delete removes message id without notifying anyone, as postsuper -d
// does. A message being delivered is removed once its attempt ends;
// recipients already accepted by then have it.
func (q *Queue) Delete(ctx context.Context, id string) error {
	return q.modify(ctx, id, func(a *activeMsg) { a.del = true }, func(m *meta) error {
		q.sched.remove(id)
		return q.spool.remove(id)
	})
}

// modify runs onActive on a message in delivery (under its lock), or
// onIdle on its metadata otherwise, with the queue locked so that it
// cannot start an attempt meanwhile.
func (q *Queue) modify(ctx context.Context, id string, onActive func(*activeMsg), onIdle func(*meta) error) error {
	if !validID(id) {
		return ErrNotFound
	}
	for {
		q.mu.Lock()
		a, ok := q.active[id]
		if !ok {
			defer q.mu.Unlock()
			m, err := q.spool.readMeta(id)
			if errors.Is(err, os.ErrNotExist) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
			return onIdle(m)
		}
		a.mu.Lock()
		if !a.finished {
			onActive(a)
			a.mu.Unlock()
			q.mu.Unlock()
			return nil
		}
		a.mu.Unlock()
		q.mu.Unlock()
		select {
		case <-a.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/internal/ctxio"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/store"
)

var _ mail.Target = (*Queue)(nil)

// Start implements mail.Target: it begins a message for the queue. The
// Delivery returned also has an ID() string method giving the queue id
// once Commit has returned.
func (q *Queue) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	if q.down.Load() {
		return nil, &mail.Error{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2}, Message: "queue is shutting down"}
	}
	if env == nil || !validAddr(env.From, true) {
		return nil, &mail.Error{Code: 553, EnhancedCode: gosmtp.EnhancedCode{5, 1, 7}, Message: "invalid sender address"}
	}
	return &delivery{q: q, env: env, seen: make(map[string]mail.RcptDSN)}, nil
}

// Via returns a Target that queues messages for hop (in the form
// outbound.ParseNextHop reads) whatever their recipients' domains: the
// queue in front of a transport-table next hop, so that a message is
// stored before it is acknowledged and retried if the hop is down.
func (q *Queue) Via(hop string) (mail.Target, error) {
	h, err := outbound.ParseNextHop(hop)
	if err != nil {
		return nil, err
	}
	return viaTarget{q: q, hop: h.String()}, nil
}

// Transport implements smtp.Transports for the router: every LMTP or
// SMTP next hop of the transport table is reached through the queue.
func (q *Queue) Transport(ctx context.Context, t store.Transport) (mail.Target, error) {
	var h outbound.NextHop
	switch {
	case t.Method == "lmtp" && t.Network == "unix":
		h = outbound.NextHop{Protocol: outbound.LMTP, Host: t.Path, Unix: true}
	case t.Method == "lmtp":
		h = outbound.NextHop{Protocol: outbound.LMTP, Host: t.Host, Port: t.Port}
	case t.Method == "smtp" && t.Host != "":
		h = outbound.NextHop{Protocol: outbound.SMTP, Host: t.Host, Port: t.Port, MX: t.MX}
	default:
		return nil, fmt.Errorf("queue: no next hop for transport %q", t.Method)
	}
	return q.Via(h.String())
}

// Quarantine returns a Target whose messages are queued on hold, as
// postsuper -h leaves them: listed with Held set, delivered only after
// Release, or removed with Delete. A milter's quarantine action lands
// here (smtp.Options.Quarantine). hop, when not empty (in the form
// outbound.ParseNextHop reads), is where every recipient goes once
// released: the server's own LMTP listener for local mail, so that a
// released message is not filtered and quarantined again.
func (q *Queue) Quarantine(hop string) (mail.Target, error) {
	if hop != "" {
		h, err := outbound.ParseNextHop(hop)
		if err != nil {
			return nil, err
		}
		hop = h.String()
	}
	return quarantineTarget{q: q, hop: hop}, nil
}

type quarantineTarget struct {
	q   *Queue
	hop string
}

func (v quarantineTarget) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	d, err := v.q.Start(ctx, env)
	if err != nil {
		return nil, err
	}
	d.(*delivery).hop, d.(*delivery).held = v.hop, true
	return d, nil
}

type viaTarget struct {
	q   *Queue
	hop string
}

func (v viaTarget) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	d, err := v.q.Start(ctx, env)
	if err != nil {
		return nil, err
	}
	d.(*delivery).hop = v.hop
	return d, nil
}

type delivery struct {
	q     *Queue
	env   *mail.Envelope
	rcpts []string
	seen  map[string]mail.RcptDSN // DSN parameters of each recipient added
	hop   string                  // fixed next hop (Via), empty to route per attempt
	held  bool                    // queued on hold (Quarantine)
	tmp   string                  // body written so far, in tmp/
	size  int64
	id    string
	done  bool
}

// AddRecipient implements smtp.Delivery.
func (d *delivery) AddRecipient(ctx context.Context, rcpt string) error {
	if !validAddr(rcpt, false) || domainOf(rcpt) == "" {
		return &mail.Error{Code: 553, EnhancedCode: gosmtp.EnhancedCode{5, 1, 3}, Message: "invalid recipient address"}
	}
	if _, ok := d.seen[rcpt]; ok {
		// The first RCPT (or forwarding) naming it keeps its parameters.
		return nil
	}
	if len(d.rcpts) >= d.q.opts.MaxRecipients {
		return &mail.Error{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 5, 3}, Message: "too many recipients"}
	}
	d.seen[rcpt] = mail.RcptDSNFrom(ctx)
	d.rcpts = append(d.rcpts, rcpt)
	return nil
}

// Body implements smtp.Delivery: the content is copied, byte for byte,
// into the spool and fsynced.
func (d *delivery) Body(ctx context.Context, body mail.Body) error {
	if d.tmp != "" {
		return errors.New("queue: Body called twice")
	}
	rc, err := body.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := d.q.spool.createTemp("body")
	if err != nil {
		return tempErr("spool", err)
	}
	limit := d.q.opts.MaxMessageBytes
	n, err := io.Copy(f, io.LimitReader(ctxio.NewReader(ctx, rc), limit+1))
	if err == nil && n > limit {
		f.Close()
		os.Remove(f.Name())
		return &mail.Error{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 3, 4}, Message: "message exceeds the queue's size limit"}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return tempErr("spool", err)
	}
	d.tmp, d.size = f.Name(), n
	return nil
}

// Commit implements smtp.Delivery: when it returns nil, the message and
// its recipients are on disk, fsynced, and scheduled for delivery.
func (d *delivery) Commit(ctx context.Context) error {
	if d.done {
		return errors.New("queue: delivery already finished")
	}
	if d.tmp == "" || len(d.rcpts) == 0 {
		return &mail.Error{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 5, 1}, Message: "no recipients or no content"}
	}
	q := d.q
	now := q.opts.now()
	id := newID(now)
	m := &meta{ID: id, Txn: d.env.ID, From: d.env.From, Arrived: now, NextAttempt: now, Size: d.size,
		AuthUser: d.env.AuthUser, SMTPUTF8: d.env.SMTPUTF8 || !isASCII(d.env.From), Held: d.held,
		Ret: d.env.DSNReturn, EnvID: d.env.EnvID}
	for _, r := range d.rcpts {
		dsn := d.seen[r]
		rs := rcptState{Addr: r, Hop: d.hop, State: Queued, Notify: dsn.Notify}
		if dsn.ORcpt != "" {
			rs.ORcpt = dsn.ORcptType + ";" + dsn.ORcpt
		}
		m.Recipients = append(m.Recipients, rs)
		m.SMTPUTF8 = m.SMTPUTF8 || !isASCII(r)
	}
	// The body first: metadata without a body is removed at start-up,
	// but only a crash before writeMeta's directory fsync, which also
	// makes the body's new name durable, can leave one, and such a
	// message was never acknowledged.
	if err := os.Rename(d.tmp, q.spool.bodyPath(id)); err != nil {
		return tempErr("spool", err)
	}
	d.tmp = ""
	if err := q.spool.writeMeta(m); err != nil {
		q.spool.remove(id)
		return tempErr("spool", err)
	}
	d.done, d.id = true, id
	if d.held {
		q.log.Info("queue: message quarantined (held)", "id", id, "txn", d.env.ID, "from", d.env.From, "rcpts", len(d.rcpts), "size", d.size)
		return nil
	}
	q.mu.Lock()
	q.sched.set(id, now)
	q.mu.Unlock()
	q.Wake()
	q.log.Info("queue: message queued", "id", id, "txn", d.env.ID, "from", d.env.From, "rcpts", len(d.rcpts), "size", d.size)
	return nil
}

// Withdraw implements smtp.Withdrawer: rcpt is left out of the message
// Commit queues.
func (d *delivery) Withdraw(ctx context.Context, rcpt string) error {
	if d.done {
		return errors.New("queue: delivery already finished")
	}
	for i, r := range d.rcpts {
		if r == rcpt {
			d.rcpts = append(d.rcpts[:i], d.rcpts[i+1:]...)
			delete(d.seen, rcpt)
			return nil
		}
	}
	return errors.New("queue: no such recipient")
}

var _ mail.Withdrawer = (*delivery)(nil)

// Abort implements smtp.Delivery.
func (d *delivery) Abort(ctx context.Context) error {
	if d.tmp != "" {
		os.Remove(d.tmp)
		d.tmp = ""
	}
	d.done = true
	return nil
}

// ID returns the queue id given by Commit, empty before.
func (d *delivery) ID() string { return d.id }

// Enqueue queues a message in one call and returns its id: Start, every
// recipient, Body and Commit. Any refused recipient fails the whole call.
func (q *Queue) Enqueue(ctx context.Context, env *mail.Envelope, body mail.Body) (string, error) {
	dl, err := q.Start(ctx, env)
	if err != nil {
		return "", err
	}
	d := dl.(*delivery)
	for _, r := range env.Recipients {
		if err := d.AddRecipient(ctx, r); err != nil {
			d.Abort(ctx)
			return "", err
		}
	}
	if err := d.Body(ctx, body); err != nil {
		d.Abort(ctx)
		return "", err
	}
	if err := d.Commit(ctx); err != nil {
		d.Abort(ctx)
		return "", err
	}
	return d.id, nil
}

// tempErr is a failure of the queue's own storage. It is a plain error,
// not an *mail.Error, so the server answers it with a fixed reply of
// its class and keeps the detail (spool paths, system errors) for its
// log.
func tempErr(what string, err error) error {
	return fmt.Errorf("queue: %s: %w", what, err)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

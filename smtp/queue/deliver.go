package queue

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
)

// activeMsg is a message during one delivery attempt.
type activeMsg struct {
	id   string
	done chan struct{} // closed when the attempt is over

	mu       sync.Mutex
	m        *meta
	pending  int // jobs not yet finished
	results  map[int]outbound.Result
	hold     bool // administrative requests made during the attempt
	del      bool
	finished bool
}

// job is the part of an attempt that goes through one next hop.
type job struct {
	a   *activeMsg
	idx []int // recipient indexes in a.m
	msg *outbound.Message
}

// destination is the line of jobs for one next hop and the workers that
// carry them, each over one connection reused from job to job.
type destination struct {
	key     string
	hop     outbound.NextHop
	jobs    []*job
	workers int
}

// msgBody is a spooled message as a mail.Body.
type msgBody struct {
	path string
	size int64
}

func (b msgBody) Open() (io.ReadCloser, error) { return os.Open(b.path) }
func (b msgBody) Len() int64                   { return b.size }

// dispatch starts an attempt for each message due now, up to MaxActive
// messages in progress, and returns how many it started.
func (q *Queue) dispatch() int {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0
	}
	now := q.opts.now()
	var started []*activeMsg
	for len(q.active) < q.opts.MaxActive {
		id, ok := q.sched.popDue(now)
		if !ok {
			break
		}
		a := &activeMsg{id: id, done: make(chan struct{}), results: make(map[int]outbound.Result)}
		q.active[id] = a
		started = append(started, a)
	}
	q.wg.Add(len(started))
	q.loading += len(started)
	q.mu.Unlock()
	for _, a := range started {
		go q.attempt(a)
	}
	return len(started)
}

// attempt loads a message and hands its queued recipients, grouped by
// next hop, to the destinations.
func (q *Queue) attempt(a *activeMsg) {
	defer q.wg.Done()
	defer func() {
		q.mu.Lock()
		q.loading--
		q.loaded.Broadcast()
		q.mu.Unlock()
	}()
	m, err := q.spool.readMeta(a.id)
	if err != nil {
		// Deleted under us, or damaged: leave it to an administrator.
		q.log.Error("queue: cannot load message", "id", a.id, "err", err)
		q.mu.Lock()
		delete(q.active, a.id)
		q.mu.Unlock()
		close(a.done)
		return
	}
	a.m = m
	body := msgBody{path: q.spool.bodyPath(a.id), size: m.Size}
	type group struct {
		hop outbound.NextHop
		idx []int
	}
	groups := make(map[string]*group)
	var order []string
	for _, i := range m.pending() {
		rcpt := m.Recipients[i].Addr
		hop, serr := q.route(q.ctx, rcpt, m.Recipients[i].Hop)
		if serr != nil {
			a.results[i] = outbound.Result{Recipient: rcpt, Err: serr}
			continue
		}
		key := hop.String()
		g := groups[key]
		if g == nil {
			g = &group{hop: hop}
			groups[key] = g
			order = append(order, key)
		}
		g.idx = append(g.idx, i)
	}
	a.pending = len(groups)
	if a.pending == 0 {
		q.wg.Add(1)
		q.finalize(a)
		return
	}
	for _, key := range order {
		g := groups[key]
		rcpts := make([]string, len(g.idx))
		dsn := make([]mail.RcptDSN, len(g.idx))
		for n, i := range g.idx {
			rcpts[n] = m.Recipients[i].Addr
			dsn[n] = m.Recipients[i].rcptDSN()
		}
		q.submit(key, g.hop, &job{a: a, idx: g.idx, msg: &outbound.Message{
			From: m.From, Recipients: rcpts, Body: body, SMTPUTF8: m.SMTPUTF8,
			Ret: m.Ret, EnvID: m.EnvID, DSN: dsn,
		}})
	}
}

// route finds a recipient's next hop: the one fixed at queueing time, or
// Options.Route's answer, or the recipient's domain.
func (q *Queue) route(ctx context.Context, rcpt, fixed string) (outbound.NextHop, *mail.Error) {
	spec := fixed
	if spec == "" && q.opts.Route != nil {
		s, err := q.opts.Route(ctx, rcpt)
		if err != nil {
			return outbound.NextHop{}, &mail.Error{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0},
				Message: "routing " + rcpt + ": " + err.Error()}
		}
		spec = s
	}
	if spec == "" {
		d := domainOf(rcpt)
		if d == "" || strings.ContainsAny(d, "[]") {
			return outbound.NextHop{}, &mail.Error{Code: 553, EnhancedCode: gosmtp.EnhancedCode{5, 1, 3},
				Message: "recipient " + rcpt + " has no domain to deliver to"}
		}
		return outbound.NextHop{Protocol: outbound.SMTP, Host: d, MX: true}, nil
	}
	hop, err := outbound.ParseNextHop(spec)
	if err != nil {
		// A broken transport table is fixed by an administrator:
		// keep the message meanwhile.
		return outbound.NextHop{}, &mail.Error{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 5},
			Message: "bad next hop for " + rcpt + ": " + err.Error()}
	}
	return hop, nil
}

// submit adds a job to its destination and starts workers as the limits
// allow.
func (q *Queue) submit(key string, hop outbound.NextHop, j *job) {
	q.mu.Lock()
	d := q.dests[key]
	if d == nil {
		d = &destination{key: key, hop: hop}
		q.dests[key] = d
	}
	d.jobs = append(d.jobs, j)
	q.startWorkersLocked(d)
	q.mu.Unlock()
}

// startWorkersLocked starts workers for d while it has more jobs than
// workers, up to PerDestination and MaxConnections. The caller holds mu.
func (q *Queue) startWorkersLocked(d *destination) {
	for d.workers < q.opts.PerDestination && d.workers < len(d.jobs) && q.conns < q.opts.MaxConnections {
		d.workers++
		q.conns++
		q.wg.Add(1)
		go q.worker(d)
	}
}

// worker carries a destination's jobs over one connection, reopened when
// it breaks, until the line is empty.
func (q *Queue) worker(d *destination) {
	defer q.wg.Done()
	var cn Conn
	defer func() {
		if cn != nil {
			cn.Close()
		}
	}()
	for {
		q.mu.Lock()
		for len(d.jobs) == 0 && q.loading > 0 {
			q.loaded.Wait()
		}
		if len(d.jobs) == 0 {
			d.workers--
			if d.workers == 0 && q.dests[d.key] == d {
				delete(q.dests, d.key)
			}
			q.mu.Unlock()
			if cn != nil {
				cn.Close()
				cn = nil
			}
			q.mu.Lock()
			q.conns--
			// Hand the freed connection to a next hop waiting for one.
			for _, other := range q.dests {
				if q.conns >= q.opts.MaxConnections {
					break
				}
				q.startWorkersLocked(other)
			}
			q.mu.Unlock()
			return
		}
		j := d.jobs[0]
		d.jobs[0] = nil
		d.jobs = d.jobs[1:]
		q.mu.Unlock()
		if cn == nil {
			c, oerr := q.opts.Courier.Open(q.ctx, d.hop)
			cn = c
			if oerr != nil {
				err := outbound.AsError(oerr)
				q.log.Info("queue: next hop unavailable", "hop", d.key, "err", err.Error())
				// Everything waiting for a destination that cannot be
				// reached fails alike: one connection attempt, not one
				// per message.
				q.mu.Lock()
				rest := d.jobs
				d.jobs = nil
				q.mu.Unlock()
				for _, r := range append([]*job{j}, rest...) {
					q.complete(r, failAll(r.msg.Recipients, err))
				}
				continue
			}
		}
		q.complete(j, cn.Send(q.ctx, j.msg))
		if !cn.Usable() {
			cn.Close()
			cn = nil
		}
	}
}

func failAll(rcpts []string, err *mail.Error) []outbound.Result {
	rs := make([]outbound.Result, len(rcpts))
	for i, r := range rcpts {
		rs[i] = outbound.Result{Recipient: r, Err: err}
	}
	return rs
}

// complete records a job's results; the last job of an attempt
// finalizes it.
func (q *Queue) complete(j *job, res []outbound.Result) {
	a := j.a
	a.mu.Lock()
	for n, i := range j.idx {
		if n < len(res) {
			a.results[i] = res[n]
		}
	}
	a.pending--
	last := a.pending == 0
	a.mu.Unlock()
	if last {
		// Off the worker: removing or rewriting the spool files takes
		// milliseconds on some disks, and the connection can carry the
		// next message meanwhile.
		q.wg.Add(1)
		go q.finalize(a)
	}
}

// finalize applies an attempt's results: delivered and failed recipients
// are settled, failures reported to the sender, and the message removed
// or rescheduled.
func (q *Queue) finalize(a *activeMsg) {
	defer q.wg.Done()
	now := q.opts.now()
	a.mu.Lock()
	m := a.m
	var failed, relayed []int
	for i, r := range a.results {
		rs := &m.Recipients[i]
		rs.Last, rs.Remote = now, r.Remote
		if r.Err == nil {
			if rs.Notify.Success() && !r.DSN {
				// The next hop does not offer DSN, so it will never
				// report the delivery asked for: say it was relayed
				// (RFC 3461 section 5.2.2). One that does was given
				// NOTIFY and reports it itself.
				relayed = append(relayed, i)
			}
			rs.State, rs.Code, rs.Enhanced, rs.Reply = Delivered, 250, [3]int{2, 0, 0}, clean(r.Reply)
			rs.record(attempt{At: now, Remote: r.Remote, TLS: r.TLS, Code: rs.Code, Enhanced: rs.Enhanced, Reply: rs.Reply})
			q.logAttempt(m, rs, r, "sent")
			continue
		}
		rs.Code, rs.Enhanced, rs.Reply = r.Err.Code, r.Err.EnhancedCode, clean(r.Err.Message)
		rs.record(attempt{At: now, Remote: r.Remote, TLS: r.TLS, Code: rs.Code, Enhanced: rs.Enhanced, Reply: rs.Reply})
		status := "deferred"
		if r.Err.Code >= 500 {
			rs.State = Failed
			failed = append(failed, i)
			status = "bounced"
		}
		q.logAttempt(m, rs, r, status)
	}
	slices.Sort(failed)
	m.Attempts++
	remaining := m.pending()
	if len(remaining) > 0 && now.Sub(m.Arrived) >= q.opts.MaxLifetime {
		for _, i := range remaining {
			m.Recipients[i].State = Failed
			failed = append(failed, i)
		}
		remaining = nil
	}
	warn := len(remaining) > 0 && q.opts.DelayWarning > 0 && !m.Warned && now.Sub(m.Arrived) >= q.opts.DelayWarning
	if a.del {
		// Deleted during the attempt: nobody is told, as with postsuper -d.
		failed, relayed, warn = nil, nil, false
	}
	a.mu.Unlock()
	// Notifications are queued without holding the message's lock: the
	// queue may be their target, and its Commit takes the queue's lock.
	if len(failed) > 0 {
		if err := q.notify(m, failed, actionFailed, now); err != nil {
			// The sender must hear of the failure: keep the recipients
			// queued, so the next attempt fails them and tries again.
			for _, i := range failed {
				m.Recipients[i].State = Queued
			}
			remaining = m.pending()
		}
	}
	if len(relayed) > 0 {
		// Sent once: the recipients are delivered whatever becomes of
		// the notice, and a failure to queue it is logged by notify.
		_ = q.notify(m, relayed, actionRelayed, now)
	}
	if warn && q.notify(m, remaining, actionDelayed, now) == nil {
		m.Warned = true
	}
	a.mu.Lock()
	a.finished = true
	reschedule := false
	switch {
	case a.del || len(remaining) == 0:
		q.removeFiles(a.id)
		q.log.Info("queue: message done", "id", a.id, "txn", m.Txn, "attempts", m.Attempts, "failed", len(failed))
	default:
		next := now.Add(q.backoff(m.Attempts))
		// The last attempt falls at expiry; past it (a notification
		// that could not be stored), the backoff applies as before.
		if last := m.Arrived.Add(q.opts.MaxLifetime); next.After(last) && last.After(now) {
			next = last
		}
		m.NextAttempt = next
		m.Held = m.Held || a.hold
		if err := q.spool.writeMeta(m); err != nil {
			// The previous metadata stays: the attempt is repeated
			// (a recipient may get a second copy, none is lost).
			q.log.Error("queue: saving message state", "id", a.id, "txn", m.Txn, "err", err)
		}
		reschedule = !m.Held
		q.log.Info("queue: message deferred", "id", a.id, "txn", m.Txn, "attempts", m.Attempts, "pending", len(remaining), "next", next)
	}
	a.mu.Unlock()
	q.mu.Lock()
	delete(q.active, a.id)
	if reschedule {
		q.sched.set(a.id, m.NextAttempt)
	}
	q.mu.Unlock()
	close(a.done)
	q.Wake()
}

// clean makes a server reply fit for one metadata and DSN field.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxReplyLen {
		s = s[:maxReplyLen]
	}
	return s
}

// logAttempt writes the one line per recipient and attempt that says
// where the message went: the remote server as "host[address]", the TLS
// version of the connection ("" in clear) and the server's reply.
func (q *Queue) logAttempt(m *meta, rs *rcptState, r outbound.Result, status string) {
	q.log.Info("queue: delivery attempt", "id", m.ID, "txn", m.Txn, "rcpt", rs.Addr,
		"status", status, "remote", r.Remote, "tls", r.TLS, "code", rs.Code,
		"enhanced", fmt.Sprintf("%d.%d.%d", rs.Enhanced[0], rs.Enhanced[1], rs.Enhanced[2]),
		"reply", rs.Reply, "attempt", m.Attempts+1)
}

package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

// Replies the router gives for recipients it cannot take.
var (
	errUnknownUser = &mail.Error{Code: 550, EnhancedCode: [3]int{5, 1, 1}, Message: "User unknown"}
	errRelayDenied = &mail.Error{Code: 554, EnhancedCode: [3]int{5, 7, 1}, Message: "Relay access denied"}
	errLoop        = &mail.Error{Code: 554, EnhancedCode: [3]int{5, 4, 6}, Message: "Forwarding loop"}
	errTempLookup  = &mail.Error{Code: 451, EnhancedCode: [3]int{4, 3, 0}, Message: "Temporary lookup failure, try again later"}
	errNoQueue     = &mail.Error{Code: 550, EnhancedCode: [3]int{5, 7, 1}, Message: "Remote delivery is not available"}
	errWithdrawn   = &mail.Error{Code: 451, EnhancedCode: [3]int{4, 3, 0}, Message: "Delivery failed, try again later"}
	errNoStatus    = &mail.Error{Code: 451, EnhancedCode: [3]int{4, 3, 0}, Message: "Delivery status unknown, try again later"}
)

// Options configure a Router.
type Options struct {
	// Directory answers recipient resolution and the transport table.
	// Required.
	Directory store.Directory
	// Resolve tunes recipient resolution (subaddress delimiters, limits).
	Resolve store.ResolveOptions
	// Local delivers into local mailboxes: one Delivery per message,
	// with every local mailbox the message goes to as a recipient. It
	// records the envelope in each copy (Return-Path, Delivered-To), as
	// local.Delivery does. When its Delivery is a PartialDelivery, one
	// mailbox failing after DATA fails that mailbox alone. Required.
	Local mail.Target
	// Queue takes mail for addresses outside the local domains. Nil
	// refuses such recipients.
	Queue mail.Target
	// Transports opens the LMTP and SMTP next hops the transport table
	// names. Nil makes recipients routed to them fail temporarily.
	Transports Transports
	// Logger receives routing decisions; nil discards.
	Logger *slog.Logger
}

// Router is the Target the servers deliver through. For each recipient
// it resolves forwardings with store.Resolve, sends one copy to each
// distinct local mailbox (with Return-Path and Delivered-To), remote
// addresses to the queue, and whatever the transport table routes
// elsewhere (by the final address's domain, as Postfix's transport_maps)
// to that transport.
//
// Delivery is two-phase across all of them. Body has every leg write its
// copies without making them visible (the local Maildir files, the
// queue's spool file); Commit makes them visible only once every leg's
// first phase succeeded. Over SMTP a message is all or nothing: a
// temporary or system failure of any copy (disk full, I/O error, a
// mailbox full with local.Delivery.QuotaTempFail) refuses the whole
// message with that 4xx and stores nothing; a permanent failure of some
// copies found after DATA (a mailbox this message would put over quota)
// is answered 250 for the message and bounced for those recipients alone,
// through the Queue's Bouncer, as Postfix does (nothing is sent for the
// null sender; with no Bouncer the whole message is refused with the
// permanent reply instead). If every copy failed for good the message is
// refused with the first reply. Over LMTP (BodyNonAtomic) each recipient
// gets its own reply and nothing is committed for a recipient whose reply
// is not 250.
//
// Once the local copies are committed, the recipients that asked
// NOTIFY=SUCCESS (RFC 3461) and got a Maildir copy are named in one
// notice, Action: delivered, through the Queue's mail.SuccessNotifier.
//
// Policy follows the envelope: an unauthenticated client (MX, LMTP) may
// only send to local domains and to domains the transport table relays;
// an authenticated one (env.AuthUser set), or this system's own mail
// (env.Generated: notifications), may send anywhere.
type Router struct {
	opts Options
	log  *slog.Logger
}

// New returns a Router.
func New(opts Options) (*Router, error) {
	if opts.Directory == nil || opts.Local == nil {
		return nil, errors.New("router: Options.Directory and Local are required")
	}
	r := &Router{opts: opts, log: opts.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Start implements Target.
func (r *Router) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	return &routed{r: r, env: env, legs: map[string]*leg{}, transports: map[string]*store.Transport{}}, nil
}

// routed is one message going through the router. Its Delivery is
// split into legs, one per underlying Delivery.
type routed struct {
	r          *Router
	env        *mail.Envelope
	legs       map[string]*leg
	order      []*leg
	routes     []route
	transports map[string]*store.Transport // by domain; nil entry when none
	committed  bool
	body       mail.Body // the message, kept from Body for a success notice
}

// route is where one recipient went.
type route struct {
	rcpt  string
	dsn   mail.RcptDSN // the recipient's DSN parameters, for a notification
	dests []dest
	// refused is set when the recipient's reply after DATA (LMTP) was a
	// failure: it is not reported delivered, whatever copy another
	// recipient's success keeps.
	refused bool
}

// dest is one destination of a recipient: a final address on a leg, or
// the reply that refused it when the recipient has several.
type dest struct {
	leg  *leg
	rcpt string
	err  error
}

// leg is one Delivery of the router's.
type leg struct {
	key    string
	d      mail.Delivery
	rcpts  map[string]bool
	status map[string]error // per recipient after Body, for a PartialDelivery
	err    error            // failure of the whole leg
	done   bool             // committed or aborted
	local  bool             // the Maildir leg: its commit is final delivery
	// committed is set once the leg's Commit succeeded.
	committed bool
}

// AddRecipient implements Delivery. A recipient with one destination is
// refused with that destination's reply. One that forwards to several is
// accepted as long as one destination takes it: the others' replies are
// kept and count as failures found after DATA (bounced when permanent),
// as Postfix treats an alias expansion.
func (m *routed) AddRecipient(ctx context.Context, rcpt string) error {
	targets, err := m.resolve(ctx, rcpt)
	if err != nil {
		m.r.log.Info("recipient refused", "id", m.env.ID, "rcpt", rcpt, "err", err)
		return err
	}
	// Every leg is started before any recipient is added, so that a
	// target refusing to start leaves no copy of this recipient behind.
	legs := make([]*leg, len(targets))
	for i, t := range targets {
		l, err := m.leg(ctx, t)
		if err != nil {
			for _, l := range legs[:i] {
				m.dropIfEmpty(ctx, l)
			}
			return err
		}
		legs[i] = l
	}
	rt := route{rcpt: rcpt, dsn: mail.RcptDSNFrom(ctx)}
	var first error
	ok := 0
	for i, t := range targets {
		l := legs[i]
		if !l.rcpts[t.rcpt] {
			if err := l.d.AddRecipient(ctx, t.rcpt); err != nil {
				m.dropIfEmpty(ctx, l)
				m.r.log.Info("destination refused", "id", m.env.ID, "rcpt", rcpt, "dest", t.rcpt, "err", err)
				if first == nil {
					first = err
				}
				rt.dests = append(rt.dests, dest{rcpt: t.rcpt, err: err})
				continue
			}
			l.rcpts[t.rcpt] = true
		}
		ok++
		rt.dests = append(rt.dests, dest{leg: l, rcpt: t.rcpt})
	}
	if ok == 0 {
		return first
	}
	m.routes = append(m.routes, rt)
	return nil
}

// target is one destination of a recipient before its leg exists.
type target struct {
	key       string
	local     bool
	transport *store.Transport // nil for local and queue
	rcpt      string
}

// resolve turns rcpt into its destinations, or the reply refusing it.
func (m *routed) resolve(ctx context.Context, rcpt string) ([]target, error) {
	a, err := store.ParseAddress(rcpt)
	if err != nil {
		var ae *store.AddressError
		if errors.As(err, &ae) {
			return nil, &mail.Error{Code: 553, EnhancedCode: [3]int{5, 1, 3}, Message: "Bad recipient address: " + ae.Reason}
		}
		return nil, err
	}
	res, err := store.Resolve(ctx, m.r.opts.Directory, a.String(), m.r.opts.Resolve)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotLocal):
		t, terr := m.transport(ctx, a.Domain)
		if terr != nil {
			return nil, terr
		}
		// A domain in the transport table is one this host relays for
		// (Postfix's relay_domains with transport_maps); an error entry
		// refuses it below with its own text.
		if m.env.AuthUser == "" && !m.env.Generated && t == nil {
			return nil, errRelayDenied
		}
		res = &store.Resolution{Remote: []string{a.String()}}
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrDisabled):
		return nil, errUnknownUser
	case errors.Is(err, store.ErrLoop):
		return nil, errLoop
	default:
		var ae *store.AddressError
		if errors.As(err, &ae) {
			return nil, &mail.Error{Code: 553, EnhancedCode: [3]int{5, 1, 3}, Message: "Bad recipient address: " + ae.Reason}
		}
		m.r.log.Warn("recipient lookup failed", "id", m.env.ID, "rcpt", rcpt, "err", err)
		return nil, errTempLookup
	}
	for _, f := range res.Failed {
		m.r.log.Info("forwarding destination dropped", "id", m.env.ID, "rcpt", rcpt, "dest", f.Address, "err", f.Err)
	}
	var out []target
	for _, mb := range res.Local {
		t, err := m.route(ctx, mb.Address, true)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	for _, addr := range res.Remote {
		t, err := m.route(ctx, addr, false)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// route picks the leg for one final address by the transport table.
func (m *routed) route(ctx context.Context, addr string, local bool) (target, error) {
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	t, err := m.transport(ctx, domain)
	if err != nil {
		return target{}, err
	}
	switch {
	case t != nil && t.Method == "error":
		text := t.Text
		if text == "" {
			text = "Recipient refused by the transport table"
		}
		return target{}, &mail.Error{Code: 550, EnhancedCode: [3]int{5, 0, 0}, Message: text}
	case t != nil && (t.Method == "lmtp" || t.Method == "smtp" && t.Host != ""):
		return target{key: "transport\x00" + t.String(), transport: t, rcpt: addr}, nil
	case local:
		return target{key: "local", local: true, rcpt: addr}, nil
	}
	if m.r.opts.Queue == nil {
		return target{}, errNoQueue
	}
	return target{key: "queue", rcpt: addr}, nil
}

// transport returns the transport table entry for domain, nil if none.
func (m *routed) transport(ctx context.Context, domain string) (*store.Transport, error) {
	if t, ok := m.transports[domain]; ok {
		return t, nil
	}
	spec, err := m.r.opts.Directory.Transport(ctx, domain)
	var ae *store.AddressError
	if errors.Is(err, store.ErrNotFound) || errors.As(err, &ae) {
		m.transports[domain] = nil
		return nil, nil
	}
	if err != nil {
		m.r.log.Warn("transport lookup failed", "domain", domain, "err", err)
		return nil, errTempLookup
	}
	t, err := store.ParseTransport(spec)
	if err != nil {
		m.r.log.Error("bad transport table entry", "domain", domain, "err", err)
		return nil, &mail.Error{Code: 451, EnhancedCode: [3]int{4, 3, 5}, Message: "Transport configuration error"}
	}
	m.transports[domain] = t
	return t, nil
}

// leg returns the leg for t, starting its Delivery when new.
func (m *routed) leg(ctx context.Context, t target) (*leg, error) {
	if l, ok := m.legs[t.key]; ok {
		return l, nil
	}
	var tg mail.Target
	switch {
	case t.transport != nil:
		if m.r.opts.Transports == nil {
			return nil, &mail.Error{Code: 451, EnhancedCode: [3]int{4, 3, 5}, Message: "Transport not available"}
		}
		var err error
		tg, err = m.r.opts.Transports.Transport(ctx, *t.transport)
		if err != nil {
			return nil, err
		}
	case t.local:
		tg = m.r.opts.Local
	default:
		tg = m.r.opts.Queue
	}
	d, err := tg.Start(ctx, m.env)
	if err != nil {
		return nil, err
	}
	l := &leg{key: t.key, d: d, rcpts: map[string]bool{}, local: t.local && t.transport == nil}
	m.legs[t.key] = l
	m.order = append(m.order, l)
	return l, nil
}

func (m *routed) dropIfEmpty(ctx context.Context, l *leg) {
	if len(l.rcpts) > 0 {
		return
	}
	_ = l.d.Abort(ctx)
	delete(m.legs, l.key)
	for i, o := range m.order {
		if o == l {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
}

// stage is the first phase: every leg writes its copies concurrently
// (local copies fsynced, the queue's spool file fsynced) without making
// any visible. A leg's err is a failure of the whole leg, its status the
// reply per recipient of a PartialDelivery.
func (m *routed) stage(ctx context.Context, body mail.Body) {
	m.body = body
	m.eachLeg(func(l *leg) {
		if pd, ok := l.d.(mail.PartialDelivery); ok {
			var c mail.StatusMap
			pd.BodyNonAtomic(ctx, &c, body)
			l.status = c.Results()
			if l.status == nil {
				l.status = map[string]error{}
			}
			return
		}
		l.err = l.d.Body(ctx, body)
	})
	// A leg none of whose recipients is ready is done with.
	for _, l := range m.order {
		failed := l.err != nil
		if l.status != nil {
			failed = true
			for r := range l.rcpts {
				if e, ok := l.status[r]; ok && e == nil {
					failed = false
				}
			}
		}
		if failed {
			_ = l.d.Abort(ctx)
			l.done = true
		}
	}
}

// result is the reply for d after the first phase, nil if its copy is
// ready to be committed.
func (d dest) result() error {
	switch {
	case d.err != nil:
		return d.err
	case d.leg.err != nil:
		return d.leg.err
	case d.leg.status != nil:
		if err, ok := d.leg.status[d.rcpt]; ok {
			return err
		}
		return errNoStatus
	}
	return nil
}

// Body implements Delivery: the first phase of every leg, then the
// verdict for the message as a whole (see Router). On success the
// message, and the notification of any recipient that failed for good,
// are ready for Commit.
func (m *routed) Body(ctx context.Context, body mail.Body) error {
	m.stage(ctx, body)
	type key struct {
		l    *leg
		rcpt string
	}
	seen := map[key]bool{}
	var temp, perm error
	var failed []mail.Failure
	ready := 0
	for _, rt := range m.routes {
		for _, d := range rt.dests {
			if seen[key{d.leg, d.rcpt}] {
				continue
			}
			seen[key{d.leg, d.rcpt}] = true
			err := d.result()
			switch {
			case err == nil:
				ready++
			case !mail.IsPermanent(err):
				if temp == nil {
					temp = err
				}
			default:
				if perm == nil {
					perm = err
				}
				failed = append(failed, mail.Failure{Rcpt: d.rcpt, Err: err, DSN: rt.dsn})
			}
		}
	}
	if temp != nil {
		m.abortRest(ctx)
		return temp
	}
	if len(failed) == 0 {
		return nil
	}
	for _, f := range failed {
		m.r.log.Info("recipient failed after DATA", "id", m.env.ID, "rcpt", f.Rcpt, "err", f.Err)
	}
	if ready == 0 {
		m.abortRest(ctx)
		return perm
	}
	if m.env.From == "" {
		m.r.log.Info("no notification for the null sender", "id", m.env.ID, "failed", len(failed))
		return nil
	}
	// Only the recipients whose NOTIFY asks for failures are reported
	// (RFC 3461 section 4.1).
	var notify []mail.Failure
	for _, f := range failed {
		if f.DSN.Notify.Failure() {
			notify = append(notify, f)
		}
	}
	if len(notify) == 0 {
		m.r.log.Info("no notification requested (NOTIFY)", "id", m.env.ID, "failed", len(failed))
		return nil
	}
	failed = notify
	b, ok := m.r.opts.Queue.(mail.Bouncer)
	if !ok {
		// Nobody to tell the sender: refusing the whole message tells
		// them, and keeps every recipient's copy or none.
		m.abortRest(ctx)
		return perm
	}
	d, err := b.Bounce(ctx, m.env, body, failed)
	switch {
	case err == nil:
		l := &leg{key: "dsn", d: d}
		m.order = append(m.order, l)
	case mail.IsPermanent(err):
		// The sender cannot be notified (Postfix's double bounce): the
		// recipients that failed are logged above.
		m.r.log.Warn("notification refused", "id", m.env.ID, "to", m.env.From, "err", err)
	default:
		m.abortRest(ctx)
		return fmt.Errorf("notification to %s not prepared: %w", m.env.From, err)
	}
	return nil
}

// Commit implements Delivery: the second phase of every leg that has
// copies ready, concurrently, so that local copies share the Maildir's
// group commit.
func (m *routed) Commit(ctx context.Context) error {
	if m.committed {
		return nil
	}
	m.committed = true
	var mu sync.Mutex
	var first error
	m.eachLeg(func(l *leg) {
		if err := l.d.Commit(ctx); err != nil {
			_ = l.d.Abort(ctx)
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		} else {
			l.committed = true
		}
		l.done = true
	})
	if first == nil {
		m.logRoutes()
	}
	m.notifyDelivered(ctx)
	return first
}

// notifyDelivered sends one notice, Action: delivered (RFC 3461 section
// 6.2), naming every recipient that asked NOTIFY=SUCCESS and has a copy
// in a Maildir now committed: only after Commit, so that no notice tells
// of a delivery that did not happen. Recipients sent on (queue,
// transport) are reported by whoever delivers them. The message is
// delivered whatever becomes of the notice: a failure is logged.
func (m *routed) notifyDelivered(ctx context.Context) {
	if m.env.From == "" || m.body == nil {
		return
	}
	var done []mail.Success
	for _, rt := range m.routes {
		if !rt.dsn.Notify.Success() || rt.refused {
			continue
		}
		for _, d := range rt.dests {
			if d.leg != nil && d.leg.local && d.leg.committed && d.leg.rcpts[d.rcpt] && d.result() == nil && !rejected(d.leg.d, d.rcpt) {
				done = append(done, mail.Success{Rcpt: rt.rcpt, DSN: rt.dsn})
				break
			}
		}
	}
	if len(done) == 0 {
		return
	}
	n, ok := m.r.opts.Queue.(mail.SuccessNotifier)
	if !ok {
		m.r.log.Warn("success notice asked for, but the queue cannot send one", "id", m.env.ID, "recipients", len(done))
		return
	}
	d, err := n.NotifyDelivered(ctx, m.env, m.body, done)
	if err == nil {
		if err = d.Commit(ctx); err != nil {
			_ = d.Abort(ctx)
		}
	}
	if err != nil {
		m.r.log.Error("success notice not sent", "id", m.env.ID, "to", m.env.From, "err", err)
		return
	}
	m.r.log.Info("success notice sent", "id", m.env.ID, "to", m.env.From, "recipients", len(done))
}

// mailboxer is a local leg's Delivery that names where a recipient's
// copies went (smtp/local's).
type mailboxer interface {
	Mailboxes(rcpt string) (user string, folders []string)
}

// rejecter is a local leg's Delivery that tells a recipient whose filter
// refused the message (smtp/local's, for a Sieve reject): committed, yet
// not delivered.
type rejecter interface {
	Rejected(rcpt string) bool
}

func rejected(d mail.Delivery, rcpt string) bool {
	r, ok := d.(rejecter)
	return ok && r.Rejected(rcpt)
}

// queueIDer is a queue leg's Delivery that names the queued message.
type queueIDer interface {
	ID() string
}

// logRoutes writes one line per recipient of a committed message: the
// address as given at RCPT and every final destination after alias,
// catch-all and subaddress expansion, as "user@domain:Folder" for a
// Maildir copy and "address:queue=ID" (or the transport) for mail sent on.
func (m *routed) logRoutes() {
	for _, rt := range m.routes {
		var to []string
		for _, d := range rt.dests {
			if d.result() != nil {
				continue
			}
			n := len(to)
			switch ld := d.leg.d.(type) {
			case mailboxer:
				user, folders := ld.Mailboxes(d.rcpt)
				for _, f := range folders {
					to = append(to, user+":"+f)
				}
			case queueIDer:
				to = append(to, d.rcpt+":queue="+ld.ID())
			}
			if len(to) == n {
				to = append(to, d.rcpt+":"+strings.Replace(d.leg.key, "\x00", "=", 1))
			}
		}
		if len(to) > 0 {
			m.r.log.Info("delivered", "id", m.env.ID, "rcpt", rt.rcpt, "to", to)
		}
	}
}

// eachLeg runs f on every leg not yet done, concurrently when there are
// several.
func (m *routed) eachLeg(f func(*leg)) {
	var wg sync.WaitGroup
	for _, l := range m.order {
		if l.done {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(l)
		}()
	}
	wg.Wait()
}

// BodyNonAtomic implements PartialDelivery: the first phase of every leg,
// and each recipient's status, the first failure among its destinations.
// Commit then commits what is ready, and nothing for a recipient whose
// status is a failure: the copies written for its other destinations
// are withdrawn (see Withdrawer), unless another recipient that succeeded
// shares them; a leg that cannot withdraw one is aborted, and the
// recipients with copies on it fail too, temporarily.
func (m *routed) BodyNonAtomic(ctx context.Context, status mail.StatusCollector, body mail.Body) {
	m.stage(ctx, body)
	type key struct {
		l    *leg
		rcpt string
	}
	st := make([]error, len(m.routes))
	for i, rt := range m.routes {
		for _, d := range rt.dests {
			if st[i] = d.result(); st[i] != nil {
				break
			}
		}
	}
	// Statuses only ever turn from nil to a failure, so this ends.
	for changed := true; changed; {
		changed = false
		keep := map[key]bool{}
		for i, rt := range m.routes {
			if st[i] == nil {
				for _, d := range rt.dests {
					keep[key{d.leg, d.rcpt}] = true
				}
			}
		}
		for i, rt := range m.routes {
			if st[i] == nil {
				continue
			}
			for _, d := range rt.dests {
				if d.leg == nil || d.leg.done || keep[key{d.leg, d.rcpt}] || d.result() != nil || !d.leg.rcpts[d.rcpt] {
					continue
				}
				m.withdraw(ctx, d.leg, d.rcpt)
			}
		}
		for i, rt := range m.routes {
			if st[i] != nil {
				continue
			}
			for _, d := range rt.dests {
				if d.leg.done {
					st[i] = errWithdrawn
					changed = true
					break
				}
			}
		}
	}
	for i, rt := range m.routes {
		m.routes[i].refused = st[i] != nil
		status.SetStatus(rt.rcpt, st[i])
	}
}

// withdraw takes rcpt's copy back from l before Commit, aborting l when
// it cannot, or when rcpt was its last recipient.
func (m *routed) withdraw(ctx context.Context, l *leg, rcpt string) {
	w, ok := l.d.(mail.Withdrawer)
	if ok && w.Withdraw(ctx, rcpt) == nil {
		delete(l.rcpts, rcpt)
		if len(l.rcpts) > 0 {
			return
		}
	}
	_ = l.d.Abort(ctx)
	l.done = true
}

// Abort implements Delivery.
func (m *routed) Abort(ctx context.Context) error {
	m.abortRest(ctx)
	return nil
}

func (m *routed) abortRest(ctx context.Context) {
	for _, l := range m.order {
		if !l.done {
			_ = l.d.Abort(ctx)
			l.done = true
		}
	}
}

var _ mail.PartialDelivery = (*routed)(nil)

package smtp

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"

	"github.com/mailagent/mailagent/internal/headerenc"
	"github.com/mailagent/mailagent/store"
)

// Replies the router gives for recipients it cannot take.
var (
	errUnknownUser = &Error{Code: 550, EnhancedCode: [3]int{5, 1, 1}, Message: "User unknown"}
	errRelayDenied = &Error{Code: 554, EnhancedCode: [3]int{5, 7, 1}, Message: "Relay access denied"}
	errLoop        = &Error{Code: 554, EnhancedCode: [3]int{5, 4, 6}, Message: "Forwarding loop"}
	errTempLookup  = &Error{Code: 451, EnhancedCode: [3]int{4, 3, 0}, Message: "Temporary lookup failure, try again later"}
	errNoQueue     = &Error{Code: 550, EnhancedCode: [3]int{5, 7, 1}, Message: "Remote delivery is not available"}
)

// RouterOptions configure a Router.
type RouterOptions struct {
	// Directory answers recipient resolution and the transport table.
	// Required.
	Directory store.Directory
	// Resolve tunes recipient resolution (subaddress delimiters, limits).
	Resolve store.ResolveOptions
	// Local delivers into local mailboxes, one Delivery per mailbox with
	// the mailbox's address as its only recipient. Required.
	Local Target
	// Queue takes mail for addresses outside the local domains. Nil
	// refuses such recipients.
	Queue Target
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
// Policy follows the envelope: an unauthenticated client (MX, LMTP) may
// only send to local domains and to domains the transport table relays;
// an authenticated one (env.AuthUser set) may send anywhere.
type Router struct {
	opts RouterOptions
	log  *slog.Logger
}

// NewRouter returns a Router.
func NewRouter(opts RouterOptions) (*Router, error) {
	if opts.Directory == nil || opts.Local == nil {
		return nil, errors.New("smtp: RouterOptions.Directory and Local are required")
	}
	r := &Router{opts: opts, log: opts.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Start implements Target.
func (r *Router) Start(ctx context.Context, env *Envelope) (Delivery, error) {
	return &routed{r: r, env: env, legs: map[string]*leg{}, transports: map[string]*store.Transport{}}, nil
}

// routed is one message going through the router. Its Delivery is
// split into legs, one per underlying Delivery.
type routed struct {
	r          *Router
	env        *Envelope
	legs       map[string]*leg
	order      []*leg
	routes     []route
	transports map[string]*store.Transport // by domain; nil entry when none
	committed  bool
}

// route is where one recipient went.
type route struct {
	rcpt  string
	dests []dest
}

type dest struct {
	leg  *leg
	rcpt string
}

// leg is one Delivery of the router's.
type leg struct {
	key     string
	mailbox string // local mailbox address, for Delivered-To; "" otherwise
	d       Delivery
	rcpts   map[string]bool
	status  map[string]error
	err     error // failure of the whole leg
	done    bool  // committed or aborted
}

// AddRecipient implements Delivery.
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
	rt := route{rcpt: rcpt}
	for i, t := range targets {
		l := legs[i]
		if !l.rcpts[t.rcpt] {
			if err := l.d.AddRecipient(ctx, t.rcpt); err != nil {
				m.dropIfEmpty(ctx, l)
				return err
			}
			l.rcpts[t.rcpt] = true
		}
		rt.dests = append(rt.dests, dest{leg: l, rcpt: t.rcpt})
	}
	m.routes = append(m.routes, rt)
	return nil
}

// target is one destination of a recipient before its leg exists.
type target struct {
	key       string
	mailbox   string
	transport *store.Transport // nil for local and queue
	rcpt      string
}

// resolve turns rcpt into its destinations, or the reply refusing it.
func (m *routed) resolve(ctx context.Context, rcpt string) ([]target, error) {
	a, err := store.ParseAddress(rcpt)
	if err != nil {
		var ae *store.AddressError
		if errors.As(err, &ae) {
			return nil, &Error{Code: 553, EnhancedCode: [3]int{5, 1, 3}, Message: "Bad recipient address: " + ae.Reason}
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
		if m.env.AuthUser == "" && t == nil {
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
			return nil, &Error{Code: 553, EnhancedCode: [3]int{5, 1, 3}, Message: "Bad recipient address: " + ae.Reason}
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
		return target{}, &Error{Code: 550, EnhancedCode: [3]int{5, 0, 0}, Message: text}
	case t != nil && (t.Method == "lmtp" || t.Method == "smtp" && t.Host != ""):
		return target{key: "transport\x00" + t.String(), transport: t, rcpt: addr}, nil
	case local:
		return target{key: "local\x00" + addr, mailbox: addr, rcpt: addr}, nil
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
		return nil, &Error{Code: 451, EnhancedCode: [3]int{4, 3, 5}, Message: "Transport configuration error"}
	}
	m.transports[domain] = t
	return t, nil
}

// leg returns the leg for t, starting its Delivery when new.
func (m *routed) leg(ctx context.Context, t target) (*leg, error) {
	if l, ok := m.legs[t.key]; ok {
		return l, nil
	}
	var tg Target
	switch {
	case t.transport != nil:
		if m.r.opts.Transports == nil {
			return nil, &Error{Code: 451, EnhancedCode: [3]int{4, 3, 5}, Message: "Transport not available"}
		}
		var err error
		tg, err = m.r.opts.Transports.Transport(ctx, *t.transport)
		if err != nil {
			return nil, err
		}
	case t.mailbox != "":
		tg = m.r.opts.Local
	default:
		tg = m.r.opts.Queue
	}
	d, err := tg.Start(ctx, m.env)
	if err != nil {
		return nil, err
	}
	l := &leg{key: t.key, mailbox: t.mailbox, d: d, rcpts: map[string]bool{}}
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

// legBody is body as leg delivers it: final delivery into a mailbox
// records the envelope (RFC 5321 section 4.4 Return-Path; Delivered-To
// as Postfix and Dovecot write it).
func (m *routed) legBody(l *leg, body Body) Body {
	if l.mailbox == "" {
		return body
	}
	return withHeaders(body, "Return-Path: "+headerenc.Path(m.env.From), "Delivered-To: "+headerenc.AddrSpec(l.mailbox))
}

// Body implements Delivery: every leg takes the body or the message
// fails as a whole.
func (m *routed) Body(ctx context.Context, body Body) error {
	for _, l := range m.order {
		if err := l.d.Body(ctx, m.legBody(l, body)); err != nil {
			return err
		}
	}
	return nil
}

// Commit implements Delivery. Legs commit concurrently, so that local
// copies share the Maildir's group commit.
func (m *routed) Commit(ctx context.Context) error {
	if m.committed {
		return nil
	}
	m.committed = true
	m.eachLeg(func(l *leg) {
		if l.err == nil {
			l.err = l.d.Commit(ctx)
		}
		l.done = true
	})
	for _, l := range m.order {
		if l.err != nil {
			m.abortRest(ctx)
			return l.err
		}
	}
	return nil
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

// BodyNonAtomic implements PartialDelivery: each leg is delivered and
// committed on its own, and each recipient's status is the first
// failure among its destinations. Commit afterwards has nothing left
// to do.
func (m *routed) BodyNonAtomic(ctx context.Context, status StatusCollector, body Body) {
	m.committed = true
	m.eachLeg(func(l *leg) {
		defer func() { l.done = true }()
		b := m.legBody(l, body)
		if pd, ok := l.d.(PartialDelivery); ok {
			c := &statusMap{m: map[string]error{}}
			pd.BodyNonAtomic(ctx, c, b)
			l.status = c.m
		} else if l.err = l.d.Body(ctx, b); l.err != nil {
			_ = l.d.Abort(ctx)
			return
		}
		if l.err = l.d.Commit(ctx); l.err != nil {
			_ = l.d.Abort(ctx)
		}
	})
	for _, rt := range m.routes {
		var err error
		for _, d := range rt.dests {
			if err = d.leg.err; err != nil {
				break
			}
			if err = d.leg.status[d.rcpt]; err != nil {
				break
			}
		}
		status.SetStatus(rt.rcpt, err)
	}
}

// statusMap collects a leg's per-recipient results.
type statusMap struct {
	mu sync.Mutex
	m  map[string]error
}

func (s *statusMap) SetStatus(rcpt string, err error) {
	s.mu.Lock()
	s.m[rcpt] = err
	s.mu.Unlock()
}

// Abort implements Delivery.
func (m *routed) Abort(ctx context.Context) error {
	m.abortRest(ctx)
	return nil
}

func (m *routed) abortRest(ctx context.Context) {
	for _, l := range m.order {
		if !l.done || l.err != nil {
			_ = l.d.Abort(ctx)
			l.done = true
		}
	}
}

var _ PartialDelivery = (*routed)(nil)

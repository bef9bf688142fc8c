// Package stack builds a whole mailagent installation from one Config:
// the directory, Maildir storage, the authenticator, the outbound client
// and queue, local delivery and the router, and the servers (MX,
// submission and LMTP; IMAP; POP3; ManageSieve) on listeners the caller
// opened, and stops it all with one Shutdown. examples/fullserver and
// mailtest both assemble their stacks here, so that the two cannot wire
// the parts differently; users get it through them (mailtest.NewServer,
// go run ./examples/fullserver).
//
// The queue and the router need each other: the router hands remote
// recipients to the queue, and the queue's delivery status notifications
// go back through the router (to a local sender's Maildir, or into the
// queue for a remote one). The router is built inside the queue's
// constructor (queue.Options.BounceTarget), so neither has a target that
// is filled in later.
//
// What is a program's own stays outside: reading a configuration file,
// opening (and counting) its listeners, certificates, metrics, control
// commands.
package stack

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/imap"
	"github.com/mailagent/mailagent/internal/connlimit"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/maildir/sieve/managesieve"
	"github.com/mailagent/mailagent/pop3"
	"github.com/mailagent/mailagent/smtp"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/queue"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

// Listener is one server of the stack: a name for logs and errors, the
// listener it serves (the stack owns it from New on), and the server's
// options. Options the stack can fill are filled where left zero (see
// Config).
type Listener[O any] struct {
	Name     string
	Listener net.Listener
	Options  O
}

// Config describes a stack. The library option structs are those of each
// package; fields a stack provides (its directory, Maildirs,
// authenticator, router, logger, TLS configuration, connection limiter)
// are filled in where left zero.
type Config struct {
	// Hostname names the system: the servers' greeting, Received fields,
	// the outbound client's EHLO, the queue's notifications.
	Hostname string
	// Logger receives every part's logs; nil discards them.
	Logger *slog.Logger

	// Store opens the directory: store.Open(Driver, DSN, &Options).
	Store StoreConfig
	// MaildirBase is the Maildir root, Maildir its options.
	MaildirBase string
	Maildir     maildir.Options
	// Resolver answers the outbound client's DNS lookups (MX, TLSA);
	// the servers' checks carry their own in their options.
	Resolver dnsauth.Resolver
	// TLS is the servers' TLS configuration where their options have
	// none.
	TLS *tls.Config
	// ConnLimiter counts every server's connections together where their
	// options have none.
	ConnLimiter *connlimit.Limiter

	// Auth checks every login; nil: a default Authenticator. Its Users
	// is the directory where left nil.
	Auth *auth.Authenticator
	// Outbound configures the MTA client (Hostname, Resolver and Logger
	// default to the stack's).
	Outbound outbound.Options
	// Queue configures the outbound queue. Dir is required; Courier
	// defaults to the outbound client, Bounces to the router
	// (BounceTarget is the stack's).
	Queue queue.Options
	// Local delivers into the Maildirs; nil: a default local.Delivery.
	// Its Maildirs, Directory and Logger are the stack's where left nil,
	// and a *local.SieveFilter without Outbound sends its vacation
	// replies and reject notifications through the queue, and without
	// Route its redirects through the router (a local address delivered
	// here, a remote one queued).
	Local *local.Delivery
	// WrapLocal, when set, stands between the router and local delivery
	// (a program's metrics, say).
	WrapLocal func(mail.Target) mail.Target
	// Router configures the router; Directory, Local, Queue and Logger are
	// the stack's where left zero.
	Router router.Options
	// QueueTransports sends transport-table next hops through the queue,
	// so that a down LMTP server or smart host never loses acknowledged
	// mail; otherwise they are refused with a temporary error.
	QueueTransports bool
	// QuarantineHop, when set, is the next hop (outbound.ParseNextHop's
	// form) that messages a check quarantines are held for in the queue,
	// on every SMTP server but LMTP whose options have no Quarantine.
	QuarantineHop string

	// The servers. SMTP servers deliver through the router; submission
	// servers get the stack's authenticator and directory.
	SMTP        []Listener[smtp.Options]
	IMAP        []Listener[imap.Options]
	POP3        []Listener[pop3.Options]
	ManageSieve []Listener[managesieve.Options]

	// ServeError receives the error a server's Serve returned other than
	// after Shutdown; nil drops it.
	ServeError func(name string, err error)
}

// StoreConfig is how the directory is opened.
type StoreConfig struct {
	Driver, DSN string
	Options     store.Options
}

// Stack is a built installation. Its fields are the parts, for a program
// that needs to reach them (metrics, administration, tests).
type Stack struct {
	Directory *store.SQL
	Maildirs  *maildir.Store
	Auth      *auth.Authenticator
	Outbound  *outbound.Client
	Queue     *queue.Queue
	Local     *local.Delivery
	Router    *router.Router

	cfg     Config
	log     *slog.Logger
	servers []server
	serving bool // Serve ran: the servers own their listeners
	cancel  context.CancelFunc
	queued  chan struct{} // closed when Run returned
	once    sync.Once
	err     error
}

// server is one server of the stack, whatever its protocol.
type server struct {
	name     string
	ln       net.Listener
	serve    func(net.Listener) error
	shutdown func(context.Context) error
	closed   error // what serve returns after shutdown
}

// New builds the stack; Serve starts it. On error everything built is
// released and every listener in cfg closed.
func New(ctx context.Context, cfg Config) (*Stack, error) {
	st := &Stack{cfg: cfg, log: cfg.Logger}
	if st.log == nil {
		st.log = slog.New(slog.DiscardHandler)
	}
	if err := st.build(ctx); err != nil {
		st.release(context.Background())
		// Those of servers not built too (closing one twice is
		// harmless).
		cfg.CloseListeners()
		return nil, err
	}
	return st, nil
}

func (st *Stack) build(ctx context.Context) error {
	cfg := &st.cfg
	var err error
	sopts := cfg.Store.Options
	if sopts.Logger == nil {
		sopts.Logger = st.log
	}
	if st.Directory, err = store.Open(ctx, cfg.Store.Driver, cfg.Store.DSN, &sopts); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	mopts := cfg.Maildir
	if mopts.Logger == nil {
		mopts.Logger = st.log
	}
	if mopts.Hostname == "" {
		mopts.Hostname = cfg.Hostname
	}
	if st.Maildirs, err = maildir.New(cfg.MaildirBase, &mopts); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	st.Auth = cfg.Auth
	if st.Auth == nil {
		st.Auth = &auth.Authenticator{Logger: st.log}
	}
	if st.Auth.Users == nil {
		st.Auth.Users = st.Directory
	}

	oopts := cfg.Outbound
	if oopts.Hostname == "" {
		oopts.Hostname = cfg.Hostname
	}
	if oopts.Resolver == nil {
		oopts.Resolver = cfg.Resolver
	}
	if oopts.Logger == nil {
		oopts.Logger = st.log
	}
	if st.Outbound, err = outbound.New(oopts); err != nil {
		return fmt.Errorf("outbound: %w", err)
	}

	st.Local = cfg.Local
	if st.Local == nil {
		st.Local = &local.Delivery{}
	}
	if st.Local.Maildirs == nil {
		st.Local.Maildirs = st.Maildirs
	}
	if st.Local.Directory == nil {
		st.Local.Directory = st.Directory
	}
	if st.Local.Logger == nil {
		st.Local.Logger = st.log
	}
	var localTarget mail.Target = st.Local
	if cfg.WrapLocal != nil {
		localTarget = cfg.WrapLocal(localTarget)
	}

	qopts := cfg.Queue
	if qopts.Courier == nil {
		qopts.Courier = queue.Outbound(st.Outbound)
	}
	if qopts.Hostname == "" {
		qopts.Hostname = cfg.Hostname
	}
	if qopts.Logger == nil {
		qopts.Logger = st.log
	}
	// The router is made with the queue, its notifications' target.
	qopts.BounceTarget = func(q *queue.Queue) (mail.Target, error) {
		ropts := cfg.Router
		if ropts.Directory == nil {
			ropts.Directory = st.Directory
		}
		if ropts.Local == nil {
			ropts.Local = localTarget
		}
		if ropts.Queue == nil {
			ropts.Queue = q
		}
		if ropts.Transports == nil && cfg.QueueTransports {
			ropts.Transports = q
		}
		if ropts.Logger == nil {
			ropts.Logger = st.log
		}
		r, err := router.New(ropts)
		if err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
		st.Router = r
		return r, nil
	}
	if st.Queue, err = queue.New(qopts); err != nil {
		return err
	}
	if sf, ok := st.Local.Filter.(*local.SieveFilter); ok {
		if sf.Outbound == nil {
			sf.Outbound = st.Queue
		}
		// Redirects go through the router, as a submission would: one to
		// a local address is delivered here, not queued for an MX lookup.
		if sf.Route == nil && st.Router != nil {
			sf.Route = st.Router
		}
	}
	return st.buildServers()
}

func (st *Stack) buildServers() error {
	cfg := &st.cfg
	var quarantine mail.Target
	if cfg.QuarantineHop != "" {
		t, err := st.Queue.Quarantine(cfg.QuarantineHop)
		if err != nil {
			st.log.Warn("quarantine: no next hop; quarantined mail goes to Junk", "hop", cfg.QuarantineHop, "err", err)
		} else {
			quarantine = t
		}
	}
	// The options every server has, where left zero.
	var limiter connlimit.Counter
	if cfg.ConnLimiter != nil {
		limiter = cfg.ConnLimiter
	}
	common := func(tc **tls.Config, cl *connlimit.Counter, lg **slog.Logger) {
		setDefault(tc, cfg.TLS)
		setDefault(cl, limiter)
		setDefault(lg, st.log)
	}
	for _, l := range cfg.SMTP {
		o := l.Options
		common(&o.TLSConfig, &o.ConnLimiter, &o.Logger)
		setDefault(&o.Hostname, cfg.Hostname)
		setDefault(&o.Target, mail.Target(st.Router))
		if o.Role == smtp.Submission {
			setDefault(&o.Authenticator, smtp.Authenticator(st.Auth))
			setDefault(&o.Directory, store.Directory(st.Directory))
		}
		if o.Role != smtp.LMTP {
			setDefault(&o.Quarantine, quarantine)
		}
		srv, err := smtp.NewServer(o)
		if err := st.add(l.Name, l.Listener, srv, err, smtp.ErrServerClosed); err != nil {
			return err
		}
	}
	for _, l := range cfg.IMAP {
		o := l.Options
		common(&o.TLSConfig, &o.ConnLimiter, &o.Logger)
		setDefault(&o.Store, st.Maildirs)
		setDefault(&o.Authenticator, imap.Authenticator(st.Auth))
		srv, err := imap.NewServer(o)
		if err := st.add(l.Name, l.Listener, srv, err, imap.ErrServerClosed); err != nil {
			return err
		}
	}
	for _, l := range cfg.POP3 {
		o := l.Options
		common(&o.TLSConfig, &o.ConnLimiter, &o.Logger)
		setDefault(&o.Hostname, cfg.Hostname)
		setDefault(&o.Maildirs, st.Maildirs)
		setDefault(&o.Authenticator, pop3.Authenticator(st.Auth))
		srv, err := pop3.NewServer(o)
		if err := st.add(l.Name, l.Listener, srv, err, pop3.ErrServerClosed); err != nil {
			return err
		}
	}
	for _, l := range cfg.ManageSieve {
		o := l.Options
		common(&o.TLSConfig, &o.ConnLimiter, &o.Logger)
		setDefault(&o.Authenticator, managesieve.Authenticator(st.Auth))
		if o.Home == nil {
			setDefault(&o.MaildirBase, cfg.MaildirBase)
		}
		srv, err := managesieve.NewServer(o)
		if err := st.add(l.Name, l.Listener, srv, err, managesieve.ErrServerClosed); err != nil {
			return err
		}
	}
	return nil
}

// setDefault sets *v to def when it is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// add records a server New built (err is NewServer's).
func (st *Stack) add(name string, ln net.Listener, srv interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}, err error, closed error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	st.servers = append(st.servers, server{name, ln, srv.Serve, srv.Shutdown, closed})
	return nil
}

// Serve starts the queue's deliveries and every server on its listener,
// in the background, and returns.
func (st *Stack) Serve() {
	ctx, cancel := context.WithCancel(context.Background())
	st.serving = true
	st.cancel = cancel
	st.queued = make(chan struct{})
	go func() {
		defer close(st.queued)
		st.Queue.Run(ctx)
	}()
	for _, s := range st.servers {
		go func() {
			if err := s.serve(s.ln); err != nil && !errors.Is(err, s.closed) && st.cfg.ServeError != nil {
				st.cfg.ServeError(s.name, err)
			}
		}()
	}
}

// Shutdown stops the stack: the servers (in the reverse order of
// Config, each finishing the transactions in flight until ctx ends),
// then the queue (deliveries in progress finish or are cut at ctx's
// end), then the storage and the directory. It returns every error met,
// joined; calls after the first return the first's result.
func (st *Stack) Shutdown(ctx context.Context) error {
	st.once.Do(func() { st.err = st.release(ctx) })
	return st.err
}

// release undoes whatever New built, in reverse order.
func (st *Stack) release(ctx context.Context) error {
	var errs []error
	for i := len(st.servers) - 1; i >= 0; i-- {
		s := st.servers[i]
		if err := s.shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
		if !st.serving {
			s.ln.Close()
		}
	}
	if st.Queue != nil {
		if err := st.Queue.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("queue: %w", err))
		}
		if st.cancel != nil {
			st.cancel()
			<-st.queued
		}
	}
	if st.Maildirs != nil {
		if err := st.Maildirs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("maildir: %w", err))
		}
	}
	if st.Directory != nil {
		if err := st.Directory.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// CloseListeners closes every listener of c: for a program that opened
// some of them and then gives up before New (which owns them from then
// on).
func (c *Config) CloseListeners() {
	closeAll(c.SMTP)
	closeAll(c.IMAP)
	closeAll(c.POP3)
	closeAll(c.ManageSieve)
}

func closeAll[O any](ls []Listener[O]) {
	for _, l := range ls {
		l.Listener.Close()
	}
}

package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailagent/mailagent/smtp/mail"
)

// Options configures a Queue. Dir and Courier are required.
type Options struct {
	// Dir is the spool directory; it is created if missing.
	Dir string
	// Courier delivers messages: Outbound(client) for an
	// *outbound.Client.
	Courier Courier
	// Route returns the next hop for a recipient in the form
	// outbound.ParseNextHop reads (a transport table lookup); "" means
	// the recipient's domain, through its MX hosts. Nil routes every
	// recipient by its domain.
	Route func(ctx context.Context, rcpt string) (string, error)
	// Bounces receives delivery status notifications; the queue itself
	// when nil. An embedder routes them to local mailboxes for local
	// senders and to the queue otherwise.
	Bounces mail.Target
	// BounceTarget, when set instead of Bounces, builds the target of
	// the notifications from the queue: New calls it once, after the
	// spool is read and before it returns, so that a router whose Queue
	// is this queue (and which routes the notifications back into it for
	// remote senders) is made in the same step, with no target to fill
	// in later. An error fails New.
	BounceTarget func(q *Queue) (mail.Target, error)
	// Hostname names this system in notifications (Reporting-MTA and the
	// MAILER-DAEMON address); "localhost" if empty.
	Hostname string
	// MinBackoff is the delay before the first retry, doubled after each
	// failed attempt up to MaxBackoff: 5 minutes and 4000 seconds by
	// default, as Postfix's minimal_backoff_time and maximal_backoff_time.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// MaxLifetime is how long temporary failures are retried before the
	// message is returned to its sender: 5 days by default.
	MaxLifetime time.Duration
	// DelayWarning, when positive, sends the sender one "delayed" notice
	// once a message has waited that long (Postfix's delay_warning_time).
	DelayWarning time.Duration
	// PerDestination bounds the connections open to one next hop at once;
	// 20 by default, as Postfix's default_destination_concurrency_limit.
	PerDestination int
	// MaxConnections bounds the connections open at once, over all next
	// hops; 100 by default, as Postfix's default_process_limit. A next
	// hop waiting for a connection gets the next one that closes.
	MaxConnections int
	// MaxActive bounds the messages being delivered at once (and so the
	// metadata held in memory); 1000 by default.
	MaxActive int
	// MaxRecipients bounds the recipients of one message; 1000 by default.
	MaxRecipients int
	// MaxMessageBytes bounds the size of one message (552 5.3.4 beyond);
	// 64 MiB by default.
	MaxMessageBytes int64
	// Logger receives queue events; nil discards them.
	Logger *slog.Logger
	// LockWait is how long New waits for the lock of the spool (see
	// ErrLocked) while another queue holds it: one being stopped, or
	// another node adopting this spool's messages. 0 fails at once.
	LockWait time.Duration
	// Peers are the spool directories of other nodes' queues, on
	// storage shared with them (see Adopt): a spool whose queue is not
	// running has its messages moved into this one and delivered from
	// here. The Dir of each queue must be a directory of its own.
	Peers []string
	// AdoptInterval is how often Run tries the Peers' spools;
	// DefaultAdoptInterval (10 s) when 0.
	AdoptInterval time.Duration

	// now is the clock, time.Now if nil; tests set it (export_test.go),
	// move a fake clock and call RunDue, or Wake when Run is running.
	now func() time.Time
}

// ErrClosed is returned by operations on a closed Queue.
var ErrClosed = errors.New("queue: closed")

// ErrNotFound is returned for a message id that is not queued.
var ErrNotFound = errors.New("queue: no such message")

// Queue is a durable outbound queue. It implements mail.Target; Run
// delivers what it holds.
type Queue struct {
	opts  Options
	log   *slog.Logger
	spool spool

	ctx    context.Context // cancelled by Close: aborts deliveries
	cancel context.CancelFunc
	wg     sync.WaitGroup // delivery goroutines

	mu     sync.Mutex
	sched  *schedule
	active map[string]*activeMsg
	dests  map[string]*destination
	conns  int // workers running, each with at most one connection
	// loading counts attempts started but not yet handed to their
	// destinations; loaded is signalled as each one is. A worker whose
	// line is empty keeps its connection while messages are loading, so
	// that messages due together share it rather than each opening one.
	loading int
	loaded  *sync.Cond
	wake    chan struct{}
	closed  bool
	down    atomic.Bool // closed, readable without mu
	lock    *os.File    // holds the spool's flock until Close
	// adopting runs Adopt for Run; Close waits for it.
	adopting sync.WaitGroup
}

// New opens the spool in opts.Dir, removes what a crash left half-written,
// and indexes the queued messages. Deliveries start with Run (or RunDue).
func New(opts Options) (*Queue, error) {
	if opts.Dir == "" || opts.Courier == nil {
		return nil, errors.New("queue: Dir and Courier are required")
	}
	if opts.Bounces != nil && opts.BounceTarget != nil {
		return nil, errors.New("queue: Bounces and BounceTarget are exclusive")
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.MinBackoff, 5*time.Minute)
	def(&opts.MaxBackoff, 4000*time.Second)
	def(&opts.MaxLifetime, 5*24*time.Hour)
	if opts.PerDestination <= 0 {
		opts.PerDestination = 20
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = 100
	}
	if opts.MaxActive <= 0 {
		opts.MaxActive = 1000
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 64 << 20
	}
	if opts.MaxRecipients <= 0 || opts.MaxRecipients > maxRecipients {
		opts.MaxRecipients = maxRecipients
	}
	q := &Queue{
		opts:   opts,
		log:    opts.Logger,
		spool:  spool{dir: opts.Dir},
		sched:  newSchedule(),
		active: make(map[string]*activeMsg),
		dests:  make(map[string]*destination),
		wake:   make(chan struct{}, 1),
	}
	q.loaded = sync.NewCond(&q.mu)
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	lock, err := lockSpool(context.Background(), opts.Dir, opts.LockWait)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q.lock = lock
	if err := q.spool.init(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	err = q.spool.scan(true, func(id string) error {
		m, err := q.spool.readMeta(id)
		if err != nil {
			// Leave the files for an administrator; never guess.
			q.log.Error("queue: unreadable metadata, message skipped", "id", id, "err", err)
			return nil
		}
		if !m.Held {
			q.sched.set(id, m.NextAttempt)
		}
		return nil
	})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	if opts.BounceTarget != nil {
		if q.opts.Bounces, err = opts.BounceTarget(q); err != nil {
			q.cancel()
			return nil, err
		}
	}
	return q, nil
}

// Len returns the number of messages waiting in the schedule (neither
// held nor being delivered).
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.sched.len()
}

// Wake makes Run look at the schedule now, e.g. after a fake clock moved.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run delivers messages as they fall due until ctx is done or the queue
// is closed. It returns ctx's error or ErrClosed.
func (q *Queue) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	if len(q.opts.Peers) > 0 {
		actx, cancel := context.WithCancel(q.ctx)
		defer cancel()
		q.adopting.Add(1)
		go func() {
			defer q.adopting.Done()
			q.adoptLoop(actx, cmp.Or(q.opts.AdoptInterval, DefaultAdoptInterval))
		}()
	}
	for {
		q.dispatch()
		q.mu.Lock()
		closed := q.closed
		next, ok := q.sched.next()
		full := len(q.active) >= q.opts.MaxActive
		q.mu.Unlock()
		if closed {
			return ErrClosed
		}
		wait := time.Hour
		if ok && !full {
			wait = max(next.Sub(q.opts.now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-q.ctx.Done():
			return ErrClosed
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// RunDue starts a delivery attempt for every message due now and returns
// when every attempt in progress has finished. With a fake clock it runs
// the retry schedule step by step, without Run.
func (q *Queue) RunDue(ctx context.Context) error {
	for {
		started := q.dispatch()
		q.mu.Lock()
		var waits []chan struct{}
		for _, a := range q.active {
			waits = append(waits, a.done)
		}
		q.mu.Unlock()
		if len(waits) == 0 && started == 0 {
			return nil
		}
		for _, w := range waits {
			select {
			case <-w:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// Messages beyond MaxActive may still be due: go round again.
		q.mu.Lock()
		next, ok := q.sched.next()
		q.mu.Unlock()
		if !ok || next.After(q.opts.now()) {
			return nil
		}
	}
}

// Close aborts deliveries in progress (their recipients stay queued) and
// waits for them to stop. Messages stay in the spool for the next New.
func (q *Queue) Close() error {
	q.mu.Lock()
	q.closed = true
	q.down.Store(true)
	q.mu.Unlock()
	q.cancel()
	q.wg.Wait()
	q.adopting.Wait()
	q.unlock()
	return nil
}

// unlock lets another queue have the spool, once deliveries stopped.
func (q *Queue) unlock() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.lock != nil {
		q.lock.Close()
		q.lock = nil
	}
}

// Shutdown stops starting deliveries and waits for those in progress to
// finish, or for ctx; then it closes the queue.
func (q *Queue) Shutdown(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	q.down.Store(true)
	q.mu.Unlock()
	q.Wake()
	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	q.cancel()
	q.wg.Wait()
	q.adopting.Wait()
	q.unlock()
	return err
}

// backoff returns the delay after the given number of failed attempts.
func (q *Queue) backoff(attempts int) time.Duration {
	d := q.opts.MinBackoff
	for i := 1; i < attempts && d < q.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, q.opts.MaxBackoff)
}

// removeFiles deletes a finished message from the spool.
func (q *Queue) removeFiles(id string) {
	if err := q.spool.remove(id); err != nil && !errors.Is(err, os.ErrNotExist) {
		q.log.Error("queue: removing message", "id", id, "err", err)
	}
}

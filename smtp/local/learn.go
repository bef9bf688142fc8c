package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Learner teaches a spam filter from a user's decision: msg is spam
// (moved into Junk) or ham (moved out of it).
type Learner interface {
	Learn(ctx context.Context, user string, spam bool, msg io.Reader) error
}

// RspamdLearner is a Learner over rspamd's controller (learnspam and
// learnham; rspamd keeps its Bayes data in Redis).
type RspamdLearner struct {
	// URL is the controller's base URL, e.g. http://127.0.0.1:11334.
	URL string
	// Password is the controller's (enable) password, sent as the
	// Password header; empty sends none.
	Password string
	// Client makes the requests; nil means a client with a 60 s timeout.
	Client *http.Client
}

// Learn implements Learner.
func (r *RspamdLearner) Learn(ctx context.Context, user string, spam bool, msg io.Reader) error {
	path := "/learnham"
	if spam {
		path = "/learnspam"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(r.URL, "/")+path, msg)
	if err != nil {
		return err
	}
	if r.Password != "" {
		req.Header.Set("Password", r.Password)
	}
	if user != "" {
		// Per-user Bayes when rspamd is set up for it.
		req.Header.Set("Deliver-To", user)
	}
	c := r.Client
	if c == nil {
		c = &http.Client{Timeout: time.Minute}
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusNoContent,
		resp.StatusCode == http.StatusBadRequest && strings.Contains(string(body), "already learned"):
		// Already learned, or nothing to learn: done, not worth a retry.
		return nil
	}
	return fmt.Errorf("rspamd %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
}

// LearnJob is one message to learn from; Open is called (and its reader
// closed) each time the job is tried, or once to copy the message into
// the spool of a durable queue.
type LearnJob struct {
	User string
	Spam bool
	Open func() (io.ReadCloser, error)
	// Done, when set, runs once Open is no longer needed: the job is
	// learnt, given up, dropped, or (durable queue) in the spool.
	Done func()
}

// LearnQueue hands jobs to a Learner in the background, retrying
// failures with backoff, so that the IMAP command that caused them
// (a move into or out of Junk) is never slowed by the filter. Jobs past
// Capacity are dropped with a log line. With Dir set the jobs are kept
// on disk and survive a restart. Create it with NewLearnQueue.
type LearnQueue struct {
	l          Learner
	log        *slog.Logger
	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
	capacity   int
	dir        string
	maxSize    int64
	jobs       chan LearnJob
	stop       chan struct{}
	wg         sync.WaitGroup
	once       sync.Once
}

// LearnQueueOptions tune a LearnQueue; zero values take the defaults.
type LearnQueueOptions struct {
	// Capacity is how many jobs may wait (default 1000).
	Capacity int
	// Attempts is how many times a job is tried (default 5).
	Attempts int
	// Backoff is the wait after the first failure, doubled after each
	// (default 10 s) up to MaxBackoff (default 1 h).
	Backoff, MaxBackoff time.Duration
	// Dir, when set, makes the queue durable: each job is copied into
	// this directory (written and fsynced in the background, never in
	// Submit) and removed once learnt or given up, and the jobs found
	// there when the queue starts are tried again, from their first
	// attempt. At most Capacity jobs are kept there.
	Dir string
	// MaxSize bounds a message copied into Dir (default 25 MiB); a
	// larger one is not learnt.
	MaxSize int64
	// Logger receives failures; nil discards.
	Logger *slog.Logger
}

// NewLearnQueue starts a queue feeding l; Close stops it. With o.Dir
// set the directory is created if need be, and an error to make it is
// returned.
func NewLearnQueue(l Learner, o LearnQueueOptions) *LearnQueue {
	q, err := newLearnQueue(l, o)
	if err != nil {
		q.log.Error("learning spool unusable, jobs kept in memory", "err", err)
	}
	return q
}

// OpenLearnQueue is NewLearnQueue that reports a spool directory it
// cannot use instead of falling back to memory.
func OpenLearnQueue(l Learner, o LearnQueueOptions) (*LearnQueue, error) {
	q, err := newLearnQueue(l, o)
	if err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

func newLearnQueue(l Learner, o LearnQueueOptions) (*LearnQueue, error) {
	q := &LearnQueue{l: l, log: o.Logger, attempts: o.Attempts, backoff: o.Backoff, maxBackoff: o.MaxBackoff,
		dir: o.Dir, maxSize: o.MaxSize, stop: make(chan struct{})}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if o.Capacity <= 0 {
		o.Capacity = 1000
	}
	if q.attempts <= 0 {
		q.attempts = 5
	}
	if q.backoff <= 0 {
		q.backoff = 10 * time.Second
	}
	if q.maxBackoff <= 0 {
		q.maxBackoff = time.Hour
	}
	if q.maxSize <= 0 {
		q.maxSize = 25 << 20
	}
	q.capacity = o.Capacity
	q.jobs = make(chan LearnJob, o.Capacity)
	var pending []*spooledJob
	var err error
	if q.dir != "" {
		pending, err = q.load()
		if err != nil {
			q.dir = ""
		}
	}
	q.wg.Add(1)
	if q.dir != "" {
		go q.runDurable(pending)
	} else {
		go q.run()
	}
	return q, err
}

// Submit queues a job without waiting; it reports false (and calls
// job.Done) when the queue is full or closed.
func (q *LearnQueue) Submit(job LearnJob) bool {
	select {
	case <-q.stop:
	default:
		select {
		case q.jobs <- job:
			return true
		default:
		}
	}
	q.log.Warn("learning dropped: queue full or closed", "user", job.User, "spam", job.Spam)
	if job.Done != nil {
		job.Done()
	}
	return false
}

func (q *LearnQueue) run() {
	defer q.wg.Done()
	for {
		select {
		case <-q.stop:
			return
		case job := <-q.jobs:
			q.do(job)
		}
	}
}

// do tries job until it succeeds, runs out of attempts or the queue
// closes.
func (q *LearnQueue) do(job LearnJob) {
	if job.Done != nil {
		defer job.Done()
	}
	wait := q.backoff
	for attempt := 1; ; attempt++ {
		err := q.try(job)
		if err == nil {
			q.log.Info("learnt", "user", job.User, "spam", job.Spam, "attempt", attempt)
			return
		}
		if attempt >= q.attempts {
			q.log.Warn("learning failed, giving up", "user", job.User, "spam", job.Spam, "attempts", attempt, "err", err)
			return
		}
		q.log.Info("learning failed, will retry", "user", job.User, "spam", job.Spam, "attempt", attempt, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-q.stop:
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(wait*2, q.maxBackoff)
	}
}

func (q *LearnQueue) try(job LearnJob) error {
	r, err := job.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-q.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return q.l.Learn(ctx, job.User, job.Spam, r)
}

// Close stops the queue; jobs still waiting are dropped (their Done
// runs), or in a durable queue copied into the spool for the next start.
func (q *LearnQueue) Close() error {
	q.once.Do(func() { close(q.stop) })
	q.wg.Wait()
	for {
		select {
		case job := <-q.jobs:
			if q.dir != "" {
				if _, err := q.persist(job); err != nil {
					q.log.Warn("learning dropped: not spooled", "user", job.User, "spam", job.Spam, "err", err)
				}
				continue
			}
			if job.Done != nil {
				job.Done()
			}
		default:
			return nil
		}
	}
}

// LearnFromMove says what a user's move or copy from one folder to
// another teaches a spam filter: into junk is spam; out of junk into any
// folder but trash is ham; anything else nothing (learn false).
func LearnFromMove(from, to, junk, trash string) (spam, learn bool) {
	switch {
	case to == junk && from != junk:
		return true, true
	case from == junk && to != junk && to != trash:
		return false, true
	}
	return false, false
}

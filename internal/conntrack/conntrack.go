// Package conntrack is the lifecycle every mailagent server shares:
// the accept loop, the admission of a connection against the
// connection limits, the bookkeeping of listeners and sessions, and
// Close and Shutdown. SMTP, IMAP, POP3 and ManageSieve each keep their
// protocol (the busy reply, how a session drains) and hand the rest to
// one Tracker, so that a limit, a refusal or a graceful shutdown works
// the same way in all of them.
//
// It implements no RFC.
package conntrack

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/mailagent/mailagent/internal/connlimit"
)

// ErrClosing is Admit's refusal once Close or Shutdown has begun.
var ErrClosing = errors.New("conntrack: server shutting down")

// Session is one admitted connection as the Tracker sees it.
type Session interface {
	comparable
	// Drain asks the session to end at its next safe point: at once,
	// after its protocol's goodbye, when it waits for a command; after
	// the reply of the command in progress otherwise. It must not
	// block on the client.
	Drain()
	// Close ends the connection at once.
	Close() error
}

// Tracker runs the lifecycle of one server whose sessions are of type
// S. Its zero value is not usable; New makes one.
type Tracker[S Session] struct {
	limits    connlimit.Counter
	log       *slog.Logger
	errClosed error
	refusals  connlimit.Refusals // the busy replies in progress

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[S]func() // each one's limit release
	closed    bool
	closing   chan struct{} // closed by Close and Shutdown
	drained   chan struct{} // closed when the last session ends after closing
	running   sync.WaitGroup
}

// New returns a Tracker admitting connections through limits, logging
// refusals to log, whose Serve returns errClosed (the server's
// ErrServerClosed) once closed.
func New[S Session](limits connlimit.Counter, log *slog.Logger, errClosed error) *Tracker[S] {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tracker[S]{limits: limits, log: log, errClosed: errClosed,
		listeners: map[net.Listener]struct{}{}, sessions: map[S]func(){},
		closing: make(chan struct{}), drained: make(chan struct{})}
}

// Track registers l, so that Close and Shutdown close it, and returns
// the function that forgets it again. When the tracker is closed
// already it closes l and returns the server's closed error instead.
func (t *Tracker[S]) Track(l net.Listener) (untrack func(), err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		if l != nil {
			l.Close()
		}
		return nil, t.errClosed
	}
	t.listeners[l] = struct{}{}
	return func() {
		t.mu.Lock()
		delete(t.listeners, l)
		t.mu.Unlock()
	}, nil
}

// Serve accepts connections on l and gives each to handle, in the
// accepting goroutine (handle admits or refuses it and starts its
// session), until Close or Shutdown; then it returns the server's
// closed error. A passing Accept failure (out of descriptors, a client
// gone before it was accepted) is retried after a pause that grows to
// a second, as net/http does, rather than spun on or given up.
func (t *Tracker[S]) Serve(l net.Listener, handle func(net.Conn)) error {
	untrack, err := t.Track(l)
	if err != nil {
		return err
	}
	defer untrack()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if t.Closed() {
				return t.errClosed
			}
			if !isTemporaryAccept(err) {
				return err
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t.log.Warn("accept", "err", err, "retry_in", backoff)
			pause := time.NewTimer(backoff)
			select {
			case <-pause.C:
			case <-t.closing:
				pause.Stop()
			}
			continue
		}
		backoff = 0
		handle(nc)
	}
}

// isTemporaryAccept reports an Accept error that passes: the process or
// system is out of descriptors or memory, or a client gave up before
// its connection was accepted.
func isTemporaryAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Admit counts nc against the limits and registers the session
// newSession makes for it, both under one lock, so that Shutdown sees
// every admitted session and the counts always agree with the
// sessions. newSession must not block. The error is ErrClosing once
// the tracker is closed, or the Counter's refusal (a
// *connlimit.LimitError from a connlimit.Limiter), logged here; the
// caller then refuses nc with its protocol's busy reply (Refuse).
func (t *Tracker[S]) Admit(nc net.Conn, newSession func() S) (S, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var none S
	if t.closed {
		return none, ErrClosing
	}
	release, err := t.limits.Acquire(nc.RemoteAddr())
	if err != nil {
		t.log.Warn("connection refused: limit reached", "remote", nc.RemoteAddr().String(), "err", err)
		return none, err
	}
	s := newSession()
	t.sessions[s] = release
	t.running.Add(1)
	return s, nil
}

// Refuse gives nc the busy reply (with its CRLF) and closes it, in the
// background, over TLS when tlsConfig is set (a listener that speaks
// TLS from the first byte); see connlimit.Refusals.
func (t *Tracker[S]) Refuse(nc net.Conn, tlsConfig *tls.Config, reply string) {
	t.refusals.Refuse(nc, tlsConfig, reply)
}

// Done forgets an ended session and gives its limit slots back; the
// session's server calls it once the session touches nothing more.
// Calls after the first do nothing.
func (t *Tracker[S]) Done(s S) {
	t.mu.Lock()
	defer t.mu.Unlock()
	release, ok := t.sessions[s]
	if !ok {
		return
	}
	delete(t.sessions, s)
	release()
	t.running.Done()
	t.closeDrainedLocked()
}

// closeDrainedLocked signals Shutdown once closing has begun and no
// session is left.
func (t *Tracker[S]) closeDrainedLocked() {
	if !t.closed || len(t.sessions) > 0 {
		return
	}
	select {
	case <-t.drained:
	default:
		close(t.drained)
	}
}

// Closed reports whether Close or Shutdown has begun.
func (t *Tracker[S]) Closed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Closing returns a channel closed once Close or Shutdown has begun.
func (t *Tracker[S]) Closing() <-chan struct{} { return t.closing }

// closeLocked stops admitting, closes the listeners and returns the
// sessions open.
func (t *Tracker[S]) closeLocked() ([]S, error) {
	if !t.closed {
		t.closed = true
		close(t.closing)
	}
	var err error
	for l := range t.listeners {
		if e := l.Close(); e != nil && err == nil && !errors.Is(e, net.ErrClosed) {
			err = e
		}
	}
	t.closeDrainedLocked()
	open := make([]S, 0, len(t.sessions))
	for s := range t.sessions {
		open = append(open, s)
	}
	return open, err
}

// Close closes the listeners and every session's connection at once.
// It does not wait for the sessions to end; Wait does.
func (t *Tracker[S]) Close() error {
	t.mu.Lock()
	open, err := t.closeLocked()
	t.mu.Unlock()
	for _, s := range open {
		s.Close()
	}
	return err
}

// Shutdown closes the listeners, asks every session to drain, and
// returns once every session has ended (Done), with the listeners'
// close error. When ctx ends first it closes the rest and returns
// ctx.Err().
func (t *Tracker[S]) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	open, err := t.closeLocked()
	t.mu.Unlock()
	for _, s := range open {
		s.Drain()
	}
	select {
	case <-t.drained:
		return err
	case <-ctx.Done():
		t.Close()
		return ctx.Err()
	}
}

// Wait returns once every admitted session has ended (Done).
func (t *Tracker[S]) Wait() { t.running.Wait() }

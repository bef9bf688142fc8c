package conntrack

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/connlimit"
)

var errClosed = errors.New("test: server closed")

// session echoes one line per connection; Drain makes it say "bye".
type session struct {
	t  *Tracker[*session]
	nc net.Conn

	mu      sync.Mutex
	drained bool
}

func (s *session) Drain() {
	s.mu.Lock()
	s.drained = true
	s.mu.Unlock()
	s.nc.SetReadDeadline(time.Now())
}

func (s *session) Close() error { return s.nc.Close() }

func (s *session) serve() {
	defer s.t.Done(s)
	defer s.nc.Close()
	r := bufio.NewReader(s.nc)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			s.mu.Lock()
			d := s.drained
			s.mu.Unlock()
			if d {
				s.nc.Write([]byte("bye\n"))
			}
			return
		}
		s.nc.Write([]byte(line))
	}
}

func start(t *testing.T, limits connlimit.Counter) (*Tracker[*session], string, chan error) {
	t.Helper()
	tr := New[*session](limits, nil, errClosed)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- tr.Serve(l, func(nc net.Conn) {
			s, err := tr.Admit(nc, func() *session { return &session{t: tr, nc: nc} })
			if err != nil {
				reply := "busy\n"
				if errors.Is(err, ErrClosing) {
					reply = "closing\n"
				}
				tr.Refuse(nc, nil, reply)
				return
			}
			go s.serve()
		})
	}()
	t.Cleanup(func() { tr.Close() })
	return tr, l.Addr().String(), done
}

func dialLine(t *testing.T, addr, send string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	c.Write([]byte(send))
	line, _ := r.ReadString('\n')
	return c, r, line
}

func TestAdmitRefusesOverLimitAndFreesOnDone(t *testing.T) {
	t.Parallel()
	released := make(chan struct{}, 1)
	_, addr, _ := start(t, notifyingCounter{connlimit.New(1, 1), released})
	first, _, got := dialLine(t, addr, "one\n")
	if got != "one\n" {
		t.Fatalf("first connection got %q", got)
	}
	if _, _, got := dialLine(t, addr, "two\n"); got != "busy\n" {
		t.Fatalf("second connection over the limit got %q, want the busy reply", got)
	}
	first.Close()
	// The slot comes back once the session has ended (Done).
	<-released
	if _, _, got := dialLine(t, addr, "three\n"); got != "three\n" {
		t.Fatalf("connection after the first ended got %q", got)
	}
}

// notifyingCounter tells released of every slot given back.
type notifyingCounter struct {
	connlimit.Counter
	released chan struct{}
}

func (n notifyingCounter) Acquire(a net.Addr) (func(), error) {
	release, err := n.Counter.Acquire(a)
	if err != nil {
		return nil, err
	}
	return func() { release(); n.released <- struct{}{} }, nil
}

func TestShutdownDrainsAndServeReturns(t *testing.T) {
	t.Parallel()
	tr, addr, done := start(t, connlimit.New(10, 10))
	_, r, got := dialLine(t, addr, "x\n")
	if got != "x\n" {
		t.Fatalf("got %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if line, _ := r.ReadString('\n'); line != "bye\n" {
		t.Fatalf("drained session said %q, want bye", line)
	}
	if err := <-done; err != errClosed {
		t.Fatalf("Serve returned %v, want the closed error", err)
	}
	if _, err := tr.Track(nil); err != errClosed {
		t.Fatalf("Track after Shutdown: %v", err)
	}
	tr.Wait()
}

func TestShutdownPastDeadlineCloses(t *testing.T) {
	t.Parallel()
	tr := New[*session](connlimit.New(10, 10), nil, errClosed)
	a, b := net.Pipe()
	defer b.Close()
	// A session that ignores Drain: only Close ends it.
	s, err := tr.Admit(a, func() *session { return &session{t: tr, nc: a} })
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer tr.Done(s)
		buf := make([]byte, 1)
		for {
			_, err := a.Read(buf)
			var ne net.Error
			if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
				return
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tr.Shutdown(ctx); err != context.Canceled {
		t.Fatalf("Shutdown past its context returned %v", err)
	}
	tr.Wait()
	if _, err := tr.Admit(a, func() *session { return s }); err != ErrClosing {
		t.Fatalf("Admit after Shutdown: %v, want ErrClosing", err)
	}
}

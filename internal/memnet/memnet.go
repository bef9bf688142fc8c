// Package memnet is an in-memory listener for tests: its connections
// are net.Pipe pairs, so a server and its test clients run in one
// testing/synctest bubble, where deadlines and timers follow the
// bubble's clock and a test of a five-minute timeout takes no real time.
//
// It implements no RFC.
package memnet

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Listener is a net.Listener whose connections Dial makes.
type Listener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

// Listen returns a new Listener.
func Listen() *Listener {
	return &Listener{ch: make(chan net.Conn), done: make(chan struct{})}
}

// Dial connects to the listener and returns the client's end; it waits
// for an Accept.
func (l *Listener) Dial() (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.ch <- server:
		return client, nil
	case <-l.done:
		client.Close()
		server.Close()
		return nil, net.ErrClosed
	}
}

// Accept returns the server's end of the next connection Dial makes.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept and Dial fail; connections made stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the pipe's address.
func (l *Listener) Addr() net.Addr { return addr{} }

type addr struct{}

func (addr) Network() string { return "pipe" }
func (addr) String() string  { return "pipe" }

// Trickle writes the pieces to c one every gap, from a goroutine, until
// they are written or c fails: a slow client, or a slowloris. It clears
// c's write deadline first. When the test ends, c is closed and the
// writer waited for, as a synctest bubble requires.
func Trickle(tb testing.TB, c net.Conn, pieces []string, gap time.Duration) {
	done := make(chan struct{})
	tb.Cleanup(func() {
		c.Close()
		<-done
	})
	c.SetWriteDeadline(time.Time{})
	go func() {
		defer close(done)
		for _, p := range pieces {
			if _, err := c.Write([]byte(p)); err != nil {
				return
			}
			time.Sleep(gap)
		}
	}()
}

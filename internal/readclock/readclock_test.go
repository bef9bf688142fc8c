package readclock

import (
	"errors"
	"net"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

var lim = Limits{Line: 300 * time.Second, MinRate: 500, Grace: 10 * time.Second, Stall: 300 * time.Second}

// TestLineWholeNotPerRead: reads within a line do not move its deadline;
// the next line gets its own.
func TestLineWholeNotPerRead(t *testing.T) {
	c := New(lim, t0)
	for s := 0.0; s < 300; s += 5 {
		if d := c.Deadline(at(s)); !d.Equal(at(300)) || c.Cause() != Line {
			t.Fatalf("read at %vs: deadline %v (%v), want %v", s, d, c.Cause(), at(300))
		}
		c.Read(1)
	}
	c.EndLine()
	if d := c.Deadline(at(301)); !d.Equal(at(601)) {
		t.Fatalf("next line: deadline %v, want %v", d, at(601))
	}
}

func TestDataRate(t *testing.T) {
	c := New(lim, t0)
	c.Deadline(at(0))
	c.SetData(true)
	if d := c.Deadline(at(1)); !d.Equal(at(11)) || c.Cause() != Data {
		t.Fatalf("transfer start: %v (%v), want %v", d, c.Cause(), at(11))
	}
	// 50,000 bytes buy 100 s on top of the grace.
	c.Read(50_000)
	if d := c.Deadline(at(5)); !d.Equal(at(111)) {
		t.Fatalf("after 50 kB: %v, want %v", d, at(111))
	}
	// Fast enough for long: the stall bound applies to each wait.
	c.Read(10_000_000)
	if d := c.Deadline(at(6)); !d.Equal(at(306)) {
		t.Fatalf("after 10 MB: %v, want the stall bound %v", d, at(306))
	}
	// The transfer ends: the next line has its full time.
	c.SetData(false)
	if d := c.Deadline(at(7)); !d.Equal(at(307)) || c.Cause() != Line {
		t.Fatalf("line after data: %v (%v), want %v", d, c.Cause(), at(307))
	}
	// A new transfer starts from nothing.
	c.SetData(true)
	if d := c.Deadline(at(8)); !d.Equal(at(18)) {
		t.Fatalf("second transfer: %v, want %v", d, at(18))
	}
}

// TestTrickle: one byte every 5 s falls behind 500 B/s at the end of the
// grace.
func TestTrickle(t *testing.T) {
	c := New(lim, t0)
	c.SetData(true)
	s := 0.0
	for ; ; s += 5 {
		if d := c.Deadline(at(s)); !at(s).Before(d) {
			break
		}
		c.Read(1)
	}
	if s != 15 { // deadline 10 s + 2 bytes / 500 B/s
		t.Fatalf("trickle cut at %vs, want 15s", s)
	}
}

func TestLogin(t *testing.T) {
	l := lim
	l.Login = 60 * time.Second
	c := New(l, t0)
	// NOOPs every 10 s: each line ends, the login limit stays.
	for s := 0.0; s < 60; s += 10 {
		if d := c.Deadline(at(s)); !d.Equal(at(60)) || c.Cause() != Login {
			t.Fatalf("at %vs: %v (%v), want the login deadline", s, d, c.Cause())
		}
		c.EndLine()
	}
	c.LoggedIn()
	if d := c.Deadline(at(61)); !d.Equal(at(361)) || c.Cause() != Line {
		t.Fatalf("after login: %v (%v), want %v", d, c.Cause(), at(361))
	}
	c.EndLine()
	// Logged out at 500 s: the login limit runs from then.
	c.LoggedOut(at(500))
	if d := c.Deadline(at(510)); !d.Equal(at(560)) || c.Cause() != Login {
		t.Fatalf("after logout: %v (%v), want %v", d, c.Cause(), at(560))
	}
}

func TestOff(t *testing.T) {
	c := New(Limits{}, t0)
	if d := c.Deadline(at(1)); !d.IsZero() || c.Cause() != None {
		t.Fatalf("no limits: %v (%v)", d, c.Cause())
	}
	c.SetData(true)
	c.Read(5)
	if d := c.Deadline(at(1)); !d.IsZero() {
		t.Fatalf("no limits in data: %v", d)
	}
}

// A Conn whose server is draining refuses to read, whatever is waiting.
func TestConnDraining(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	draining := false
	c := &Conn{Conn: a, Clock: New(Limits{Line: time.Minute}, time.Now()), WriteTimeout: time.Minute, Draining: func() bool { return draining }}
	go b.Write([]byte("x\r\n"))
	buf := make([]byte, 8)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "x\r\n" {
		t.Fatalf("read before draining: %q, %v", buf[:n], err)
	}
	draining = true
	if _, err := c.Read(buf); !errors.Is(err, ErrDraining) {
		t.Fatalf("read while draining: %v, want ErrDraining", err)
	}
}

package connlimit

import (
	"io"
	"net"
	"testing"
	"time"
)

// A counted listener closes a connection over the limit without serving
// it, and admits a new one once an admitted connection is closed.
func TestListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := New(1, 1)
	l := Listener(raw, lim)
	defer l.Close()
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	first := <-accepted
	second := dial()
	// The second is over the limit: the server side closes it unserved.
	second.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := second.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("connection over the limit: read %d, %v; want EOF", n, err)
	}
	if got := lim.Active(); got != 1 {
		t.Fatalf("%d connections counted, want 1", got)
	}
	first.Close()
	first.Close() // a second Close gives back nothing more
	if got := lim.Active(); got != 0 {
		t.Fatalf("%d connections counted after the close, want 0", got)
	}
	dial()
	third := <-accepted
	if got := lim.Active(); got != 1 {
		t.Fatalf("%d connections counted, want 1", got)
	}
	third.Close()
}

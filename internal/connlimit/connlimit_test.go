package connlimit

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
)

func tcp(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func unix(path string) net.Addr { return &net.UnixAddr{Name: path, Net: "unix"} }

// strAddr is a net.Addr of another kind, as a proxy or a pipe gives.
type strAddr string

func (a strAddr) Network() string { return "other" }
func (a strAddr) String() string  { return string(a) }

func TestAcquire(t *testing.T) {
	tests := []struct {
		name      string
		perClient int
		held      []net.Addr // acquired first, all admitted
		next      net.Addr
		want      error // nil: admitted
	}{
		{"ipv4 under limit", 2, []net.Addr{tcp("192.0.2.1:1000")}, tcp("192.0.2.1:1001"), nil},
		{"ipv4 at limit", 2, []net.Addr{tcp("192.0.2.1:1000"), tcp("192.0.2.1:1001")}, tcp("192.0.2.1:1002"), ErrPerClient},
		{"other ipv4 address separate", 1, []net.Addr{tcp("192.0.2.1:1000")}, tcp("192.0.2.2:1000"), nil},
		{"ipv4-mapped counts as ipv4", 1, []net.Addr{tcp("192.0.2.1:1000")}, tcp("[::ffff:192.0.2.1]:1000"), ErrPerClient},
		{"ipv6 same /64 together", 2,
			[]net.Addr{tcp("[2001:db8:1:2::1]:1000"), tcp("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:1000")},
			tcp("[2001:db8:1:2:ffff:ffff:ffff:ffff]:1000"), ErrPerClient},
		{"ipv6 different /64 separate", 1, []net.Addr{tcp("[2001:db8:1:2::1]:1000")}, tcp("[2001:db8:1:3::1]:1000"), nil},
		{"ipv6 zone ignored", 1, []net.Addr{tcp("[fe80::1%eth0]:1000")}, tcp("[fe80::2%eth1]:1000"), ErrPerClient},
		{"loopback ::1 and ::2 together", 1, []net.Addr{tcp("[::1]:1000")}, tcp("[::2]:1000"), ErrPerClient},
		{"unix socket exempt", 1, []net.Addr{unix("/run/a.sock"), unix("/run/a.sock")}, unix("/run/a.sock"), nil},
		{"unnamed unix socket exempt", 1, []net.Addr{unix(""), unix("@")}, unix(""), nil},
		{"nil address exempt", 1, []net.Addr{nil}, nil, nil},
		{"other addr kind with ip", 1, []net.Addr{strAddr("[2001:db8::1]:25")}, strAddr("2001:db8::2"), ErrPerClient},
		{"other addr kind without ip", 1, []net.Addr{strAddr("pipe")}, strAddr("pipe"), nil},
		{"total before per client", 5,
			[]net.Addr{tcp("192.0.2.1:1"), tcp("192.0.2.2:1"), unix("/s")}, tcp("192.0.2.3:1"), ErrTotal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(3, tt.perClient)
			for _, a := range tt.held {
				if _, err := l.Acquire(a); err != nil {
					t.Fatalf("Acquire(%v): %v", a, err)
				}
			}
			release, err := l.Acquire(tt.next)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Acquire(%v) = %v, want %v", tt.next, err, tt.want)
			}
			wantActive := len(tt.held)
			if err == nil {
				wantActive++
				if release == nil {
					t.Fatal("nil release with nil error")
				}
			} else {
				var le *LimitError
				if !errors.As(err, &le) || le.Total != len(tt.held) {
					t.Fatalf("error %#v, want a *LimitError with Total %d", err, len(tt.held))
				}
			}
			if got := l.Active(); got != wantActive {
				t.Fatalf("Active() = %d, want %d", got, wantActive)
			}
		})
	}
}

func TestLimitErrorCounts(t *testing.T) {
	l := New(10, 2)
	a, b := tcp("[2001:db8::1]:1"), tcp("[2001:db8::2]:1")
	for _, x := range []net.Addr{a, b, tcp("192.0.2.1:1")} {
		if _, err := l.Acquire(x); err != nil {
			t.Fatal(err)
		}
	}
	_, err := l.Acquire(tcp("[2001:db8::3]:1"))
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want a *LimitError", err)
	}
	want := LimitError{Err: ErrPerClient, Client: netip.MustParsePrefix("2001:db8::/64"), Total: 3, FromClient: 2}
	if *le != want {
		t.Fatalf("got %+v, want %+v", *le, want)
	}
	if got := l.ActiveFrom(b); got != 2 {
		t.Fatalf("ActiveFrom = %d, want 2", got)
	}
}

func TestReleaseIdempotent(t *testing.T) {
	l := New(2, 1)
	a := tcp("192.0.2.1:1")
	r1, err := l.Acquire(a)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Acquire(tcp("192.0.2.2:1"))
	if err != nil {
		t.Fatal(err)
	}
	r1()
	r1()
	if got := l.Active(); got != 1 {
		t.Fatalf("after a double release Active() = %d, want 1", got)
	}
	if got := l.ActiveFrom(a); got != 0 {
		t.Fatalf("ActiveFrom = %d, want 0", got)
	}
	if _, err := l.Acquire(a); err != nil {
		t.Fatalf("slot not given back: %v", err)
	}
	// The second release of r1 must not have freed r2's slot.
	if _, err := l.Acquire(tcp("192.0.2.3:1")); !errors.Is(err, ErrTotal) {
		t.Fatalf("third connection: %v, want ErrTotal", err)
	}
	r2()
	if got := l.Active(); got != 1 {
		t.Fatalf("Active() = %d, want 1", got)
	}
}

func TestClientNetwork(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string // "" for none
	}{
		{tcp("192.0.2.7:25"), "192.0.2.7/32"},
		{tcp("[::ffff:192.0.2.7]:25"), "192.0.2.7/32"},
		{tcp("[2001:db8:a:b:c:d:e:f]:25"), "2001:db8:a:b::/64"},
		{tcp("[fe80::1%lo]:25"), "fe80::/64"},
		{&net.UDPAddr{IP: net.ParseIP("2001:db8::9"), Port: 1}, "2001:db8::/64"},
		{&net.IPAddr{IP: net.ParseIP("192.0.2.9")}, "192.0.2.9/32"},
		{&net.TCPAddr{}, ""},
		{unix("/run/lmtp"), ""},
		{strAddr("host.example:25"), ""},
		{nil, ""},
	}
	for _, tt := range tests {
		p, ok := ClientNetwork(tt.addr)
		got := ""
		if ok {
			got = p.String()
		}
		if got != tt.want {
			t.Errorf("ClientNetwork(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestConcurrent acquires and releases from many goroutines (run with
// -race): the limits hold at every moment and everything is given back.
func TestConcurrent(t *testing.T) {
	const workers, rounds, perClient = 16, 200, 3
	l := New(20, perClient)
	addrs := []net.Addr{tcp("192.0.2.1:1"), tcp("[2001:db8::1]:1"), tcp("[2001:db8::2]:1"), unix("/s")}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := addrs[w%len(addrs)]
			for range rounds {
				release, err := l.Acquire(a)
				if err != nil {
					if !errors.Is(err, ErrTotal) && !errors.Is(err, ErrPerClient) {
						errs <- err
						return
					}
					continue
				}
				if n := l.ActiveFrom(a); n > perClient {
					errs <- errors.New("per-client limit exceeded")
				}
				if n := l.Active(); n > 20 {
					errs <- errors.New("total limit exceeded")
				}
				release()
				release()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := l.Active(); got != 0 {
		t.Fatalf("Active() = %d after every release, want 0", got)
	}
	if len(l.clients) != 0 {
		t.Fatalf("client map keeps %d entries", len(l.clients))
	}
}

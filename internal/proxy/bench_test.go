package proxy_test

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// BenchmarkIMAPProxy compares IMAP through the proxy with IMAP straight
// to the backend, in one run: a whole session (connect, STARTTLS, LOGIN,
// SELECT, LOGOUT) and a 64 KiB body FETCH on an open session. Password
// hashes use cheap test parameters (mailtest's), so that the figures
// show the relaying; through the proxy a login verifies the password
// twice, once there and once at the backend, and with production
// parameters each verification costs what the auth benchmark measures.
func BenchmarkIMAPProxy(b *testing.B) {
	f := newFixture(b)
	a := f.backends[0]
	body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 1024)
	u, _ := a.Store.LookupUser(b.Context(), "user@a.test")
	msg := "From: x@example.net\r\nTo: user@a.test\r\nSubject: big\r\n\r\n" + body
	if _, err := a.Maildirs.Deliver(b.Context(), u.Maildir, "INBOX", strings.NewReader(msg), nil); err != nil {
		b.Fatal(err)
	}
	direct := net.JoinHostPort(a.IP.String(), fmt.Sprint(f.ports["imap"]))
	login := func(b *testing.B, addr string) *imapclient.Client {
		c, err := imapclient.DialStartTLS(addr, &imapclient.Options{TLSConfig: f.clientTL})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Login("user@a.test", password).Wait(); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			b.Fatal(err)
		}
		return c
	}
	// Each iteration runs the operation both ways, alternately, so that
	// the machine's noise falls on both alike; the ratio is reported.
	both := func(b *testing.B, direct, proxied func()) {
		var td, tp time.Duration
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			if i%2 == 0 {
				direct()
				t1 := time.Now()
				proxied()
				td, tp = td+t1.Sub(t0), tp+time.Since(t1)
			} else {
				proxied()
				t1 := time.Now()
				direct()
				tp, td = tp+t1.Sub(t0), td+time.Since(t1)
			}
		}
		n := float64(b.N)
		b.ReportMetric(float64(td.Nanoseconds())/n, "direct-ns/op")
		b.ReportMetric(float64(tp.Nanoseconds())/n, "proxy-ns/op")
		b.ReportMetric(float64(tp)/float64(td), "proxy/direct")
	}
	b.Run("login-select", func(b *testing.B) {
		session := func(addr string) func() {
			return func() {
				c := login(b, addr)
				c.Logout().Wait()
				c.Close()
			}
		}
		both(b, session(direct), session(f.addr["imap"]))
	})
	b.Run("fetch-body", func(b *testing.B) {
		fetch := func(addr string) func() {
			c := login(b, addr)
			b.Cleanup(func() { c.Close() })
			return func() {
				msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
				if err != nil || len(msgs) != 1 || len(msgs[0].BodySection) != 1 {
					b.Fatalf("FETCH: %v", err)
				}
			}
		}
		both(b, fetch(direct), fetch(f.addr["imap"]))
	})
}

// BenchmarkIMAPProxyIdleMemory measures what an idle IMAP session costs
// the proxy: heap and goroutine stacks with 40 sessions logged in and
// selected through the proxy, less the same 40 straight to the backend
// (whose share is in both), per session.
func BenchmarkIMAPProxyIdleMemory(b *testing.B) {
	const n = 40
	f := newFixture(b)
	a := f.backends[0]
	direct := net.JoinHostPort(a.IP.String(), fmt.Sprint(f.ports["imap"]))
	measure := func(addr string) (heap, stack uint64) {
		var cs []*imapclient.Client
		defer func() {
			for _, c := range cs {
				c.Close()
			}
		}()
		before := memNow()
		for range n {
			c, err := imapclient.DialStartTLS(addr, &imapclient.Options{TLSConfig: f.clientTL})
			if err != nil {
				b.Fatal(err)
			}
			cs = append(cs, c)
			if err := c.Login("user@a.test", password).Wait(); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				b.Fatal(err)
			}
		}
		after := memNow()
		return after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc), after.StackInuse - min(after.StackInuse, before.StackInuse)
	}
	for b.Loop() {
		dh, ds := measure(direct)
		ph, ps := measure(f.addr["imap"])
		b.ReportMetric(float64(int64(ph)-int64(dh))/n, "proxy-heap-B/conn")
		b.ReportMetric(float64(int64(ps)-int64(ds))/n, "proxy-stack-B/conn")
		b.ReportMetric(float64(dh)/n, "direct-heap-B/conn")
	}
}

func memNow() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

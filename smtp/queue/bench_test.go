package queue

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop/postfixtest"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

const (
	benchMessages = 2000
	benchSize     = 10 << 10
)

// benchMessage is a 10 KiB message with ordinary 76-column lines.
func benchMessage(i int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: alice@a.test\r\nTo: bob@b.test\r\nSubject: bench %d\r\nMessage-ID: <%d@a.test>\r\n\r\n", i, i)
	line := strings.Repeat("abcdefghij", 7) + "012345\r\n"
	for b.Len()+len(line) <= benchSize {
		b.WriteString(line)
	}
	for b.Len() < benchSize-2 {
		b.WriteByte('x')
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// BenchmarkDrain measures how fast a full queue of 2000 × 10 KiB messages
// for one destination drains to an SMTP receiver on loopback, with 1, 8
// and 32 connections; one op is the whole drain. Baselines in the same
// run: Postfix draining the same load to the same receiver (when Postfix
// is installed and the benchmark runs as root), and a naive loop sending
// from memory over one go-smtp client connection, with no queue at all.
func BenchmarkDrain(b *testing.B) {
	msgs := make([][]byte, benchMessages)
	for i := range msgs {
		msgs[i] = benchMessage(i)
	}
	for _, conns := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("mailagent/conns=%d", conns), func(b *testing.B) { benchMailagent(b, msgs, conns) })
		b.Run(fmt.Sprintf("postfix/conns=%d", conns), func(b *testing.B) { benchPostfix(b, msgs, conns) })
	}
	b.Run("naive/conns=1", func(b *testing.B) { benchNaive(b, msgs) })
}

func reportRate(b *testing.B, elapsed time.Duration) {
	b.ReportMetric(float64(benchMessages*b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(0, "ns/op")
}

func benchMailagent(b *testing.B, msgs [][]byte, conns int) {
	sink := outboundtest.Start(b, outboundtest.Options{Discard: true})
	c := benchClient(b, sink.Port)
	dir := b.TempDir()
	q, err := New(Options{Dir: dir, Courier: Outbound(c), PerDestination: conns, MaxActive: 2 * benchMessages})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		base := sink.Count()
		for _, m := range msgs {
			if _, err := q.Enqueue(ctx, &mail.Envelope{From: "alice@a.test", Recipients: []string{"bob@b.test"}}, bytesBodyT(m)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		if err := q.RunDue(ctx); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		if got := sink.Count() - base; got != benchMessages {
			b.Fatalf("%d delivered, want %d", got, benchMessages)
		}
	}
	reportRate(b, elapsed)
}

func benchNaive(b *testing.B, msgs [][]byte) {
	sink := outboundtest.Start(b, outboundtest.Options{Discard: true})
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		sendAll(b, sink.Addr, msgs)
		elapsed += time.Since(start)
	}
	reportRate(b, elapsed)
}

// benchPostfix runs a private Postfix instance that relays everything to
// the receiver: the messages are injected over SMTP while the queue
// manager is not running, so they wait in the incoming queue; then the
// queue manager is started and timed until the receiver has them all.
func benchPostfix(b *testing.B, msgs [][]byte, conns int) {
	postfixtest.Check(b)
	sink := outboundtest.Start(b, outboundtest.Options{Discard: true})
	pf := startPostfix(b, postfixConfig{sinkPort: sink.Port, conns: conns})
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		base := sink.Count()
		pf.setQmgr(b, false)
		sendAll(b, pf.smtpd, msgs)
		pf.waitQueued(b, benchMessages)
		b.StartTimer()
		start := time.Now()
		pf.setQmgr(b, true)
		deadline := time.NewTimer(5 * time.Minute)
		for sink.Count()-base < benchMessages {
			select {
			case <-sink.Changed():
			case <-deadline.C:
				b.Fatalf("postfix delivered %d of %d", sink.Count()-base, benchMessages)
			}
		}
		deadline.Stop()
		elapsed += time.Since(start)
	}
	reportRate(b, elapsed)
}

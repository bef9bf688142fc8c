package dnsauth

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// checkIPRevSequential is CheckIPRev as it was before its forward lookups
// ran concurrently, making them one after the other: the baseline of
// BenchmarkCheckIPRev.
func checkIPRevSequential(ctx context.Context, r Resolver, ip net.IP, helo string) IPRevResult {
	return checkIPRev(ctx, r, ip, helo, func(ctx context.Context, r Resolver, names []string) []forwardAnswer {
		answers := make([]forwardAnswer, len(names))
		for i, n := range names {
			answers[i].addrs, answers[i].err = r.LookupIPAddr(ctx, n)
		}
		return answers
	})
}

// latencyResolver answers through Resolver after a fixed delay, the time
// a lookup takes on the network.
type latencyResolver struct {
	Resolver
	d time.Duration
}

func (l latencyResolver) wait(ctx context.Context) error {
	t := time.NewTimer(l.d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l latencyResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	if err := l.wait(ctx); err != nil {
		return nil, err
	}
	return l.Resolver.LookupAddr(ctx, addr)
}

func (l latencyResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if err := l.wait(ctx); err != nil {
		return nil, err
	}
	return l.Resolver.LookupIPAddr(ctx, host)
}

// BenchmarkCheckIPRev compares CheckIPRev with the same check making its
// forward lookups in sequence, for a client with 1 and 4 reverse names,
// against the in-memory resolver (the cost of the goroutines) and one
// whose every lookup takes 1ms (the time a session waits).
func BenchmarkCheckIPRev(b *testing.B) {
	ctx := context.Background()
	ip := net.ParseIP("192.0.2.7")
	for _, n := range []int{1, 4} {
		m := &MockResolver{}
		var names []string
		for i := range n {
			names = append(names, fmt.Sprintf("h%d.a.test", i))
			m.AddIP(names[i], ip)
		}
		m.AddPTR(ip, names...)
		for _, rc := range []struct {
			name string
			r    Resolver
		}{{"mock", m}, {"latency1ms", latencyResolver{m, time.Millisecond}}} {
			b.Run(fmt.Sprintf("names=%d/%s/sequential", n, rc.name), func(b *testing.B) {
				for b.Loop() {
					if res := checkIPRevSequential(ctx, rc.r, ip, ""); len(res.Names) != n {
						b.Fatalf("%s: %v", res.Status, strings.Join(res.Names, " "))
					}
				}
			})
			b.Run(fmt.Sprintf("names=%d/%s/concurrent", n, rc.name), func(b *testing.B) {
				for b.Loop() {
					if res := CheckIPRev(ctx, rc.r, ip, ""); len(res.Names) != n {
						b.Fatalf("%s: %v", res.Status, strings.Join(res.Names, " "))
					}
				}
			})
		}
	}
}

func (l latencyResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if err := l.wait(ctx); err != nil {
		return nil, err
	}
	return l.Resolver.LookupTXT(ctx, name)
}

// BenchmarkVerifyMessage compares VerifyMessage with VerifyDKIM,
// FromDomain and EvaluateDMARC called in turn, on a 10 KB message with two
// Ed25519 signatures, against the in-memory resolver and one whose every
// lookup takes 1ms.
func BenchmarkVerifyMessage(b *testing.B) {
	ctx := context.Background()
	m := &MockResolver{}
	var keys []*DKIMKey
	for _, s := range []string{"s1", "s2"} {
		k, err := GenerateDKIMKey("a.test", s, DKIMAlgoEd25519)
		if err != nil {
			b.Fatal(err)
		}
		rec, _ := k.Record()
		m.AddRecord(rec)
		keys = append(keys, k)
	}
	m.AddTXT("_dmarc.a.test", "v=DMARC1; p=reject")
	body := benchMessage()
	sig, err := NewSigner(keys).Sign(ctx, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	msg := append([]byte(sig), body...)
	spf := SPFResult{Status: SPFPass, Domain: "a.test"}
	for _, rc := range []struct {
		name string
		r    Resolver
	}{{"mock", m}, {"latency1ms", latencyResolver{m, time.Millisecond}}} {
		b.Run(rc.name+"/steps", func(b *testing.B) {
			for b.Loop() {
				dkim, err := VerifyDKIM(ctx, rc.r, bytes.NewReader(msg))
				if err != nil {
					b.Fatal(err)
				}
				hdr, _ := readHeader(bufioReader(msg))
				from, err := FromDomain(hdr)
				if err != nil {
					b.Fatal(err)
				}
				if d := EvaluateDMARC(ctx, rc.r, from, spf, dkim); d.Status != DMARCPass {
					b.Fatalf("%+v", d)
				}
			}
		})
		b.Run(rc.name+"/VerifyMessage", func(b *testing.B) {
			for b.Loop() {
				res, err := VerifyMessage(ctx, rc.r, bytes.NewReader(msg), &spf)
				if err != nil || res.DMARC.Status != DMARCPass {
					b.Fatalf("%+v, %v", res, err)
				}
			}
		})
	}
}

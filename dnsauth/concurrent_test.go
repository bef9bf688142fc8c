package dnsauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingResolver passes lookups to a Resolver, counting those in flight,
// and sends the name of each lookup on started as it begins.
type countingResolver struct {
	Resolver
	started chan string

	mu                   sync.Mutex
	inFlight, max, total int
}

func newCountingResolver(r Resolver) *countingResolver {
	return &countingResolver{Resolver: r, started: make(chan string, 100)}
}

// track counts a lookup of name in; the function it returns counts it out.
func (c *countingResolver) track(name string) func() {
	c.mu.Lock()
	c.inFlight++
	c.total++
	c.max = max(c.max, c.inFlight)
	c.mu.Unlock()
	c.started <- name
	return func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}
}

func (c *countingResolver) counts() (inFlight, max, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight, c.max, c.total
}

func (c *countingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	defer c.track(name)()
	return c.Resolver.LookupTXT(ctx, name)
}

func (c *countingResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	defer c.track(host)()
	return c.Resolver.LookupIPAddr(ctx, host)
}

func (c *countingResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	defer c.track(addr)()
	return c.Resolver.LookupAddr(ctx, addr)
}

// waitStarted receives the names of the next n lookups, failing the test
// if the call under test returns (done is closed) first. Lookups made one
// after the other never get there, the first waiting for the context to
// end: rather than let the test binary time out, the test fails shortly
// before its deadline (go test -timeout) with the lookups started so far.
func waitStarted(t *testing.T, c *countingResolver, n int, done <-chan struct{}) []string {
	t.Helper()
	var stuck <-chan time.Time
	if deadline, ok := t.Deadline(); ok {
		timer := time.NewTimer(time.Until(deadline) * 9 / 10)
		defer timer.Stop()
		stuck = timer.C
	}
	var names []string
	for len(names) < n {
		select {
		case name := <-c.started:
			names = append(names, name)
		case <-done:
			t.Fatalf("returned after %d lookups %v, want %d", len(names), names, n)
		case <-stuck:
			t.Fatalf("%d lookups %v started by the test's deadline, want %d: not concurrent", len(names), names, n)
		}
	}
	return names
}

// With a resolver that answers nothing until the caller gives up, iprev's
// forward lookups of every reverse name (up to the limit of 10) are all in
// flight at once, and CheckIPRev returns when the context ends, after all
// of them.
func TestCheckIPRevForwardLookupsConcurrent(t *testing.T) {
	ip := net.ParseIP("192.0.2.7")
	m := &MockResolver{Hang: map[string]bool{}}
	var names []string
	for i := range iprevMaxNames + 2 {
		n := fmt.Sprintf("h%d.a.test", i)
		names = append(names, n)
		m.Hang[n] = true
		m.AddIP(n, ip)
	}
	m.AddPTR(ip, names...)
	c := newCountingResolver(m)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	var res IPRevResult
	go func() {
		defer close(done)
		res = CheckIPRev(ctx, c, ip, "h0.a.test")
	}()
	started := waitStarted(t, c, 1+iprevMaxNames, done)
	if inFlight, _, _ := c.counts(); inFlight != iprevMaxNames {
		t.Errorf("%d lookups in flight (%v), want %d", inFlight, started, iprevMaxNames)
	}
	cancel()
	<-done
	inFlight, most, total := c.counts()
	if inFlight != 0 || most != iprevMaxNames || total != 1+iprevMaxNames {
		t.Errorf("after return: %d in flight, at most %d, %d in all; want 0, %d, %d", inFlight, most, total, iprevMaxNames, 1+iprevMaxNames)
	}
	for _, n := range names[iprevMaxNames:] {
		if q := m.Queries(n); q != 0 {
			t.Errorf("%s looked up %d times, beyond the limit", n, q)
		}
	}
	if res.Status != IPRevTempError || !res.HasPTR || len(res.Names) != 0 {
		t.Errorf("result %+v, want temperror", res)
	}
}

// The results of the forward lookups are taken in the order of the PTR
// answer, whichever returns first: Names in that order, and the first
// temporary error.
func TestCheckIPRevOrderOfNames(t *testing.T) {
	ctx := context.Background()
	ip := net.ParseIP("2001:db8::25")
	m := &MockResolver{}
	m.AddPTR(ip, "t1.a.test", "Other.a.test", "M1.a.test", "t2.a.test", "m2.a.test", "nx.a.test")
	m.AddIP("other.a.test", net.ParseIP("2001:db8::26"))
	m.AddIP("m1.a.test", net.ParseIP("192.0.2.1"), ip)
	m.AddIP("m2.a.test", ip)
	m.Fail = map[string]error{"t1.a.test": NewTempError("t1.a.test"), "t2.a.test": NewTimeoutError("t2.a.test")}
	for range 20 {
		res := CheckIPRev(ctx, m, ip, "m2.a.test")
		if res.Status != IPRevPass || !reflect.DeepEqual(res.Names, []string{"m1.a.test", "m2.a.test"}) || !res.HELOMatch || res.Err != nil {
			t.Fatalf("%+v", res)
		}
	}
	m.IP["m1.a.test"] = m.IP["other.a.test"]
	m.IP["m2.a.test"] = m.IP["other.a.test"]
	for range 20 {
		res := CheckIPRev(ctx, m, ip, "m2.a.test")
		if res.Status != IPRevTempError || len(res.Names) != 0 || res.HELOMatch || !strings.Contains(fmt.Sprint(res.Err), "t1.a.test") {
			t.Fatalf("%+v, want temperror for t1.a.test", res)
		}
	}
}

// signedMessage returns a message from from, signed by keys of a.test
// under the given selectors, each of whose records is published in m.
func signedMessage(t *testing.T, m *MockResolver, from string, selectors ...string) string {
	t.Helper()
	var keys []*DKIMKey
	for _, s := range selectors {
		k, err := GenerateDKIMKey("a.test", s, DKIMAlgoEd25519)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := k.Record()
		if err != nil {
			t.Fatal(err)
		}
		if err := m.AddRecord(rec); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	msg := crlf("From: Joe <joe@" + from + ">\nTo: sue@b.test\nSubject: dinner\n\nAre you hungry?\n")
	sig, err := NewSigner(keys).Sign(context.Background(), strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return sig + msg
}

// With a resolver that answers nothing until the caller gives up, the key
// lookups of every signature, and the DMARC lookup in VerifyMessage, are
// in flight at once; the call returns when the context ends, after all of
// them.
func TestDKIMAndDMARCLookupsConcurrent(t *testing.T) {
	m := &MockResolver{}
	msg := signedMessage(t, m, "a.test", "s1", "s2", "s3")
	m.AddTXT("_dmarc.a.test", "v=DMARC1; p=reject")
	m.Hang = map[string]bool{"s1._domainkey.a.test": true, "s2._domainkey.a.test": true, "s3._domainkey.a.test": true, "_dmarc.a.test": true}
	spf := SPFResult{Status: SPFPass, Domain: "a.test"}

	t.Run("VerifyDKIM", func(t *testing.T) {
		c := newCountingResolver(m)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		var res []DKIMResult
		var err error
		go func() {
			defer close(done)
			res, err = VerifyDKIM(ctx, c, strings.NewReader(msg))
		}()
		waitStarted(t, c, 3, done)
		cancel()
		<-done
		if inFlight, most, total := c.counts(); inFlight != 0 || most != 3 || total != 3 {
			t.Errorf("%d in flight, at most %d, %d in all; want 0, 3, 3", inFlight, most, total)
		}
		if err != nil || len(res) != 3 {
			t.Fatalf("%+v, %v", res, err)
		}
		for _, r := range res {
			if r.Status != DKIMTempError {
				t.Errorf("%s: %s (%v), want temperror", r.Selector, r.Status, r.Err)
			}
		}
	})

	t.Run("VerifyMessage", func(t *testing.T) {
		c := newCountingResolver(m)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		var res MessageAuth
		var err error
		go func() {
			defer close(done)
			res, err = VerifyMessage(ctx, c, strings.NewReader(msg), &spf)
		}()
		names := waitStarted(t, c, 4, done)
		if !strings.Contains(strings.Join(names, " "), "_dmarc.a.test") {
			t.Errorf("lookups in flight %v, want the DMARC record among them", names)
		}
		cancel()
		<-done
		if inFlight, most, total := c.counts(); inFlight != 0 || most != 4 || total != 4 {
			t.Errorf("%d in flight, at most %d, %d in all; want 0, 4, 4", inFlight, most, total)
		}
		if err != nil || len(res.DKIM) != 3 || res.DMARC == nil {
			t.Fatalf("%+v, %v", res, err)
		}
		for _, r := range res.DKIM {
			if r.Status != DKIMTempError {
				t.Errorf("%s: %s (%v), want temperror", r.Selector, r.Status, r.Err)
			}
		}
		if res.DMARC.Status != DMARCTempError {
			t.Errorf("DMARC %+v, want temperror", res.DMARC)
		}
	})
}

// VerifyMessage gives what VerifyDKIM, FromDomain and EvaluateDMARC give
// called in turn.
func TestVerifyMessageSameAsSteps(t *testing.T) {
	ctx := context.Background()
	spfPass := &SPFResult{Status: SPFPass, Domain: "a.test"}
	spfOther := &SPFResult{Status: SPFPass, Domain: "c.test"}
	for _, c := range []struct {
		name string
		from string
		set  func(m *MockResolver)
		edit func(msg string) string
		spf  *SPFResult
		want DMARCStatus // "" for no DMARC result
	}{
		{name: "pass", from: "a.test", set: func(m *MockResolver) { m.AddTXT("_dmarc.a.test", "v=DMARC1; p=reject") }, spf: spfOther, want: DMARCPass},
		{name: "organizational domain", from: "sub.a.test", set: func(m *MockResolver) {
			m.AddTXT("_dmarc.a.test", "v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=s")
		}, spf: spfPass, want: DMARCFail},
		{name: "no record", from: "a.test", set: func(*MockResolver) {}, spf: spfPass, want: DMARCNone},
		{name: "servfail", from: "a.test", set: func(m *MockResolver) {
			m.Fail = map[string]error{"_dmarc.a.test": NewTempError("_dmarc.a.test")}
		}, spf: spfPass, want: DMARCTempError},
		{name: "altered body", from: "a.test", set: func(m *MockResolver) { m.AddTXT("_dmarc.a.test", "v=DMARC1; p=reject") },
			edit: func(msg string) string { return msg + "P.S.\r\n" }, spf: spfOther, want: DMARCFail},
		{name: "no SPF result", from: "a.test", set: func(m *MockResolver) { m.AddTXT("_dmarc.a.test", "v=DMARC1; p=reject") }},
		{name: "two From fields", from: "a.test", set: func(*MockResolver) {},
			edit: func(msg string) string { return "From: x@c.test\r\n" + msg }, spf: spfPass},
	} {
		m := &MockResolver{}
		msg := signedMessage(t, m, c.from, "s1", "s2")
		c.set(m)
		if c.edit != nil {
			msg = c.edit(msg)
		}
		got, err := VerifyMessage(ctx, m, strings.NewReader(msg), c.spf)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		dkim, err := VerifyDKIM(ctx, m, strings.NewReader(msg))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := MessageAuth{DKIM: dkim}
		hdr, _ := readHeader(bufioReader([]byte(msg)))
		want.From, want.FromErr = FromDomain(hdr)
		if want.FromErr == nil && c.spf != nil {
			d := EvaluateDMARC(ctx, m, want.From, *c.spf, dkim)
			want.DMARC = &d
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, want)
		}
		switch {
		case c.want == "" && got.DMARC != nil:
			t.Errorf("%s: DMARC %+v, want none evaluated", c.name, got.DMARC)
		case c.want != "" && (got.DMARC == nil || got.DMARC.Status != c.want):
			t.Errorf("%s: DMARC %+v, want %s", c.name, got.DMARC, c.want)
		}
	}
}

// errAfter reads r, then fails.
type errAfter struct {
	r   io.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		err = e.err
	}
	return n, err
}

// parallelVerifyGoroutines counts the goroutines go-msgauth starts to
// verify several signatures, looking again while they are returning.
func parallelVerifyGoroutines() int {
	buf := make([]byte, 1<<20)
	n := 0
	for range 1000 {
		stacks := string(buf[:runtime.Stack(buf, true)])
		if n = strings.Count(stacks, "dkim.parallelVerify.func"); n == 0 {
			return 0
		}
		runtime.Gosched()
	}
	return n
}

// A message whose body cannot be read to the end is an error, and leaves no
// verifying goroutine behind; VerifyMessage ends its DMARC lookup too.
func TestVerifyDKIMReadErrorNoLeak(t *testing.T) {
	m := &MockResolver{}
	msg := signedMessage(t, m, "a.test", "s1", "s2")
	m.Hang = map[string]bool{"_dmarc.a.test": true}
	broken := errors.New("connection reset")
	if res, err := VerifyDKIM(context.Background(), m, &errAfter{strings.NewReader(msg), broken}); !errors.Is(err, broken) {
		t.Errorf("VerifyDKIM: %+v, %v; want %v", res, err, broken)
	}
	if n := parallelVerifyGoroutines(); n != 0 {
		t.Errorf("%d verifying goroutines left", n)
	}
	c := newCountingResolver(m)
	spf := SPFResult{Status: SPFPass, Domain: "a.test"}
	if res, err := VerifyMessage(context.Background(), c, &errAfter{strings.NewReader(msg), broken}, &spf); !errors.Is(err, broken) {
		t.Errorf("VerifyMessage: %+v, %v; want %v", res, err, broken)
	}
	if n := parallelVerifyGoroutines(); n != 0 {
		t.Errorf("%d verifying goroutines left", n)
	}
	if inFlight, _, total := c.counts(); inFlight != 0 || total != 3 {
		t.Errorf("%d lookups in flight, %d in all; want 0, 3", inFlight, total)
	}
}

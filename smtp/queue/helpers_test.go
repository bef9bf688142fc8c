package queue

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// recorder is a mail.Target that keeps what it is given: the sender's
// mailbox for notifications.
type recorder struct {
	mu   sync.Mutex
	msgs []recorded
}

type recorded struct {
	env  mail.Envelope
	data []byte
}

func (r *recorder) Start(ctx context.Context, env *mail.Envelope) (mail.Delivery, error) {
	return &recDelivery{r: r, env: *env}, nil
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.msgs...)
}

type recDelivery struct {
	r     *recorder
	env   mail.Envelope
	rcpts []string
	data  []byte
}

func (d *recDelivery) AddRecipient(ctx context.Context, rcpt string) error {
	d.rcpts = append(d.rcpts, rcpt)
	return nil
}

func (d *recDelivery) Body(ctx context.Context, b mail.Body) error {
	rc, err := b.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	d.data, err = io.ReadAll(rc)
	return err
}

func (d *recDelivery) Commit(ctx context.Context) error {
	d.env.Recipients = d.rcpts
	d.r.mu.Lock()
	defer d.r.mu.Unlock()
	d.r.msgs = append(d.r.msgs, recorded{env: d.env, data: d.data})
	return nil
}

func (d *recDelivery) Abort(ctx context.Context) error { return nil }

type bytesBodyT []byte

func (b bytesBodyT) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
func (b bytesBodyT) Len() int64                   { return int64(len(b)) }

// resolver points b.test at loopback and gives null.test a null MX.
func resolver() *dnsauth.MockResolver {
	return &dnsauth.MockResolver{
		MX: map[string][]*net.MX{
			"b.test":    {{Host: "mx.b.test.", Pref: 10}},
			"null.test": {{Host: ".", Pref: 0}},
		},
		IP: map[string][]net.IP{"mx.b.test": {net.ParseIP("127.0.0.1")}},
	}
}

type fixture struct {
	q       *Queue
	clock   *clock
	bounces *recorder
	dir     string
}

// newFixture makes a queue delivering to port on loopback for b.test.
func newFixture(t *testing.T, port int, tweak func(*Options)) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), bounces: &recorder{}, dir: t.TempDir()}
	f.q = f.open(t, port, tweak)
	return f
}

func (f *fixture) open(t *testing.T, port int, tweak func(*Options)) *Queue {
	t.Helper()
	c, err := outbound.New(outbound.Options{Hostname: "mta.a.test", Resolver: resolver(), Port: port,
		CommandTimeout: 10 * time.Second, DataTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Dir: f.dir, Courier: Outbound(c), Bounces: f.bounces, Hostname: "mta.a.test", now: f.clock.Now}
	if tweak != nil {
		tweak(&opts)
	}
	q, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func (f *fixture) enqueue(t *testing.T, from string, rcpts []string, body string) string {
	t.Helper()
	id, err := f.q.Enqueue(context.Background(), &mail.Envelope{From: from, Recipients: rcpts}, bytesBodyT(body))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) runDue(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.q.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
}

// ids lists the queued message ids.
func (f *fixture) ids(t *testing.T) []string {
	t.Helper()
	var ids []string
	if err := f.q.List(context.Background(), func(in *Info) error {
		ids = append(ids, in.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// deadPort returns a loopback port where nothing listens.
func deadPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range p {
		n = n*10 + int(c-'0')
	}
	return n
}

func benchClient(b *testing.B, port int) *outbound.Client {
	c, err := outbound.New(outbound.Options{Hostname: "mta.a.test", Resolver: resolver(), Port: port})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func tlsClient(pool *x509.CertPool) *tls.Config { return &tls.Config{RootCAs: pool} }

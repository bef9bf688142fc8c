package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/examples/fullserver/config"
)

// signedMessage returns a message from From: whose header carries one
// DKIM signature per key.
func signedMessage(t *testing.T, from string, keys ...*dnsauth.DKIMKey) []byte {
	t.Helper()
	body := "From: <" + from + ">\r\nTo: <u@b.test>\r\nSubject: lookups\r\n\r\nHello.\r\n"
	var sigs string
	for _, k := range keys {
		sig, err := dnsauth.NewSigner([]*dnsauth.DKIMKey{k}).Sign(context.Background(), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		sigs += sig
	}
	return []byte(sigs + body)
}

// dkimKeys makes an Ed25519 key of domain per selector.
func dkimKeys(t *testing.T, domain string, selectors ...string) []*dnsauth.DKIMKey {
	t.Helper()
	var keys []*dnsauth.DKIMKey
	for _, s := range selectors {
		k, err := dnsauth.GenerateDKIMKey(domain, s, dnsauth.DKIMAlgoEd25519)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

// gatedResolver answers from its MockResolver, except that it holds the
// lookups of a gate's names until every one of them is being looked up:
// then the gate opens and they all get their answers. A lookup whose
// context ends while its gate is closed (at dns.timeout) fails as a
// timeout and is recorded: the names of that gate were not looked up
// together. Lookups of other names are answered at once.
type gatedResolver struct {
	*dnsauth.MockResolver

	mu     sync.Mutex
	gates  []*gate
	gaveUp []string
}

// A gate's names are keyed "TXT name" or "IP name", lower case, without
// the final dot.
type gate struct {
	waiting map[string]int // name → lookups of it held now
	open    chan struct{}
}

func (g *gatedResolver) addGate(names ...string) *gate {
	gt := &gate{waiting: map[string]int{}, open: make(chan struct{})}
	for _, n := range names {
		gt.waiting[n] = 0
	}
	g.gates = append(g.gates, gt)
	return gt
}

func (gt *gate) opened() bool {
	select {
	case <-gt.open:
		return true
	default:
		return false
	}
}

// pass returns once the gate of key, if any, is open, or with a timeout
// error when ctx ends first.
func (g *gatedResolver) pass(ctx context.Context, kind, name string) error {
	key := kind + " " + strings.ToLower(strings.TrimSuffix(name, "."))
	g.mu.Lock()
	var gt *gate
	for _, x := range g.gates {
		if _, ok := x.waiting[key]; ok {
			gt = x
		}
	}
	if gt == nil || gt.opened() {
		g.mu.Unlock()
		return nil
	}
	gt.waiting[key]++
	all := true
	for _, n := range gt.waiting {
		all = all && n > 0
	}
	if all {
		close(gt.open)
	}
	g.mu.Unlock()
	select {
	case <-gt.open:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		if gt.opened() {
			return nil
		}
		gt.waiting[key]--
		g.gaveUp = append(g.gaveUp, key)
		return &net.DNSError{Err: "i/o timeout", Name: name, IsTimeout: true, IsTemporary: true}
	}
}

func (g *gatedResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if err := g.pass(ctx, "TXT", name); err != nil {
		return nil, err
	}
	return g.MockResolver.LookupTXT(ctx, name)
}

func (g *gatedResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if err := g.pass(ctx, "IP", host); err != nil {
		return nil, err
	}
	return g.MockResolver.LookupIPAddr(ctx, host)
}

// startMX starts the server with only an MX listener, the domain b.test
// with the user u@b.test, and dns.timeout; its lookups go to r, or when r
// is nil to the name server at address dns.
func startMX(t *testing.T, r dnsauth.Resolver, dns string, timeout time.Duration) (*server, string) {
	t.Helper()
	dir := t.TempDir()
	ok(t, dir, "", "domain", "add", "b.test")
	ok(t, dir, "pw-of-u\n", "user", "add", "-force", "u@b.test")
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Hostname = "mx.b.test"
	cfg.Listen = config.Listen{MX: "127.0.0.1:0"}
	cfg.DNS.Resolver = dns
	cfg.DNS.Timeout = config.Duration{Duration: timeout}
	s := &server{cfg: cfg, log: slog.New(slog.DiscardHandler), out: io.Discard, serveErrs: make(chan error, 16), resolver: r}
	err := s.start(context.Background())
	t.Cleanup(s.stop)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.listening) != 1 || s.listening[0][0] != "mx" {
		t.Fatalf("listening on %v", s.listening)
	}
	return s, dir
}

// TestMXLooksUpTogether: the lookups of each step of the MX's checks
// that do not depend on each other are made together (the forward
// lookups of the client's two reverse names at EHLO; both signatures'
// keys and the From domain's DMARC record at the end of DATA): the
// resolver answers them only once all of them are asked, and every check
// passes. Were they made one after the other, the first of a step would
// wait for dns.timeout and end in temperror.
func TestMXLooksUpTogether(t *testing.T) {
	m := &dnsauth.MockResolver{}
	m.AddPTR(net.ParseIP("127.0.0.1"), "one.a.test", "two.a.test")
	m.AddIP("one.a.test", net.ParseIP("127.0.0.1"))
	m.AddIP("two.a.test", net.ParseIP("127.0.0.1"))
	m.AddTXT("a.test", "v=spf1 ip4:127.0.0.1 -all")
	m.AddTXT("_dmarc.a.test", "v=DMARC1; p=reject")
	keys := dkimKeys(t, "a.test", "s1", "s2")
	for _, k := range keys {
		rec, err := k.Record()
		if err != nil {
			t.Fatal(err)
		}
		if err := m.AddRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	g := &gatedResolver{MockResolver: m}
	iprev := g.addGate("IP one.a.test", "IP two.a.test")
	data := g.addGate("TXT s1._domainkey.a.test", "TXT s2._domainkey.a.test", "TXT _dmarc.a.test")
	s, dir := startMX(t, g, "", 2*time.Second)

	c := qaDial(t, s.listening[0][1], false)
	msg := signedMessage(t, "x@a.test", keys...)
	c.dialog(
		[2]string{"", "220"},
		[2]string{"EHLO one.a.test", "250"},
		[2]string{"MAIL FROM:<x@a.test>", "250"},
		[2]string{"RCPT TO:<u@b.test>", "250"},
		[2]string{"DATA", "354"},
		[2]string{strings.TrimSuffix(string(msg), "\r\n") + "\r\n.", "250"},
		[2]string{"QUIT", "221"},
	)

	g.mu.Lock()
	gaveUp := slices.Clone(g.gaveUp)
	g.mu.Unlock()
	if len(gaveUp) > 0 {
		t.Errorf("lookups that waited for dns.timeout, the others of their step not asked: %q", gaveUp)
	}
	if !iprev.opened() || !data.opened() {
		t.Errorf("gates opened: EHLO %v, end of DATA %v", iprev.opened(), data.opened())
	}
	ar := deliveredAuthResults(t, dir)
	for _, want := range []string{
		"iprev=pass policy.iprev=127.0.0.1 (one.a.test)",
		"spf=pass smtp.mailfrom=x@a.test",
		"dkim=pass header.d=a.test header.s=s1",
		"dkim=pass header.d=a.test header.s=s2",
		"dmarc=pass (p=reject dis=none) header.from=a.test",
	} {
		if !strings.Contains(ar, want) {
			t.Errorf("Authentication-Results lacks %q:\n%s", want, ar)
		}
	}
}

// deliveredAuthResults returns the Authentication-Results field, unfolded,
// of the one message delivered to u@b.test.
func deliveredAuthResults(t *testing.T, dir string) string {
	t.Helper()
	newDir := filepath.Join(dir, "mail", "b.test", "u", "Maildir", "new")
	es, err := os.ReadDir(newDir)
	if err != nil || len(es) != 1 {
		t.Fatalf("delivered: %v %v", es, err)
	}
	b, err := os.ReadFile(filepath.Join(newDir, es[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	hdr, _, _ := strings.Cut(string(b), "\r\n\r\n")
	for _, f := range strings.Split(strings.ReplaceAll(hdr, "\r\n\t", " "), "\r\n") {
		if strings.HasPrefix(f, "Authentication-Results:") {
			return f
		}
	}
	t.Fatalf("no Authentication-Results:\n%s", hdr)
	return ""
}

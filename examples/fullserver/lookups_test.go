package main

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/smtp"
)

// deadResolver is a name server that never answers: every lookup waits
// for its context to end. It records how many lookups were waiting at
// once, and which names were asked how often.
type deadResolver struct {
	ptr []string // LookupAddr answers these names at once

	mu          sync.Mutex
	waiting     int
	maxWaiting  int
	asked       map[string]int
	askedInStep []string
}

func (d *deadResolver) wait(ctx context.Context, name string) error {
	d.mu.Lock()
	d.waiting++
	d.maxWaiting = max(d.maxWaiting, d.waiting)
	d.asked[strings.ToLower(name)]++
	d.mu.Unlock()
	<-ctx.Done()
	d.mu.Lock()
	d.waiting--
	d.mu.Unlock()
	return &net.DNSError{Err: "i/o timeout", Name: name, IsTimeout: true}
}

// step returns the most lookups that waited at once since the last call.
func (d *deadResolver) step() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.maxWaiting
	d.maxWaiting = 0
	return n
}

func (d *deadResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return nil, d.wait(ctx, name)
}
func (d *deadResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return nil, d.wait(ctx, name)
}
func (d *deadResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return nil, d.wait(ctx, host)
}
func (d *deadResolver) LookupCNAME(ctx context.Context, host string) (string, error) {
	return "", d.wait(ctx, host)
}
func (d *deadResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	if d.ptr != nil {
		return d.ptr, nil
	}
	return nil, d.wait(ctx, addr)
}

// signedMessage returns a message from From: whose header carries one
// DKIM signature per selector, all of domain.
func signedMessage(t *testing.T, from, domain string, selectors ...string) []byte {
	t.Helper()
	body := "From: <" + from + ">\r\nTo: <u@b.test>\r\nSubject: lookups\r\n\r\nHello.\r\n"
	var sigs string
	for _, s := range selectors {
		k, err := dnsauth.GenerateDKIMKey(domain, s, dnsauth.DKIMAlgoEd25519)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := dnsauth.NewSigner([]*dnsauth.DKIMKey{k}).Sign(context.Background(), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		sigs += sig
	}
	return []byte(sigs + body)
}

// TestChecksLookUpTogether: on a resolver that never answers, the
// lookups of each step that do not depend on each other wait at the same
// time (the two DKIM keys and both DMARC records at the end of DATA; the
// forward lookups of the client's two reverse names at connect), each is
// asked once, and every check records temperror without refusing the
// message.
func TestChecksLookUpTogether(t *testing.T) {
	dead := &deadResolver{asked: map[string]int{}}
	inner := dnsauth.WithTimeout(dead, 200*time.Millisecond)
	auth := &smtp.SenderAuth{Resolver: sharedLookups{inner}, DMARC: dnsauth.DMARCRejectOnFail, RejectSPFFail: true}
	c := concurrentChecks{auth, inner}.checks()
	ctx := context.Background()
	env := &smtp.Envelope{
		ID: "1", From: "x@sub.a.test", Recipients: []string{"u@b.test"}, Helo: "client.a.test", Hostname: "mx.b.test",
		RemoteAddr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000}, Values: map[any]any{},
	}

	dead.ptr = []string{"one.a.test.", "two.a.test."}
	for _, ch := range c.Connect {
		if v := ch.CheckConnect(ctx, env); v.Action == smtp.Reject {
			t.Fatalf("connect refused: %+v", v.Reply)
		}
	}
	if n := dead.step(); n != 2 {
		t.Errorf("connect: %d forward lookups waited together, want 2", n)
	}
	for _, ch := range c.Mail {
		if v := ch.CheckMail(ctx, env); v.Action == smtp.Reject {
			t.Fatalf("MAIL refused: %+v", v.Reply)
		}
	}
	dead.step()
	msg := signedMessage(t, "x@sub.a.test", "sub.a.test", "s1", "s2")
	var headers []string
	for _, ch := range c.Message {
		v := ch.CheckMessage(ctx, env, smtp.BytesBody(msg))
		if v.Action != smtp.Accept {
			t.Fatalf("message not accepted: action %v, %+v", v.Action, v.Reply)
		}
		headers = append(headers, v.Headers...)
	}
	// s1 and s2's keys, _dmarc.sub.a.test and _dmarc.a.test.
	if n := dead.step(); n != 4 {
		t.Errorf("end of DATA: %d lookups waited together, want 4", n)
	}
	for _, name := range []string{"s1._domainkey.sub.a.test", "s2._domainkey.sub.a.test", "_dmarc.sub.a.test", "one.a.test.", "two.a.test."} {
		if dead.asked[name] != 1 {
			t.Errorf("%s asked %d times, want once (asked: %v)", name, dead.asked[name], dead.asked)
		}
	}
	if len(headers) != 1 {
		t.Fatalf("headers %q", headers)
	}
	for _, want := range []string{"iprev=temperror", "spf=temperror", "dkim=temperror", "dmarc=temperror"} {
		if !strings.Contains(headers[0], want) {
			t.Errorf("Authentication-Results lacks %s:\n%s", want, headers[0])
		}
	}
	if n := strings.Count(headers[0], "dkim=temperror"); n != 2 {
		t.Errorf("%d dkim results, want 2:\n%s", n, headers[0])
	}
}

// TestMessageLookups: the names started ahead are those DKIM and DMARC
// ask for, folded and unfolded signatures alike.
func TestMessageLookups(t *testing.T) {
	hdr := []byte("DKIM-Signature: v=1; a=ed25519-sha256; d=Example.COM;\r\n s=sel\r\n  one; h=from; bh=x; b=y\r\n" +
		"DKIM-Signature: v=1; d=other.example; s=k2; b=z\r\n" +
		"DKIM-Signature: v=1; d=broken.example\r\n" +
		"From: A <a@news.example.co.uk>\r\n\r\n")
	got := messageLookups(hdr)
	want := []string{"selone._domainkey.Example.COM", "k2._domainkey.other.example", "_dmarc.news.example.co.uk", "_dmarc.example.co.uk"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := messageLookups([]byte("Subject: no From\r\n\r\n")); len(got) != 0 {
		t.Errorf("without From or signature: %q", got)
	}
}

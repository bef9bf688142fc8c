package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

type bytesBody []byte

func (b bytesBody) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
func (b bytesBody) Len() int64                   { return int64(len(b)) }

const testMsg = "From: alice@a.test\r\nTo: bob@b.test\r\nSubject: hello\r\n\r\nHi Bob.\r\n"

// mxResolver points b.test's MX at loopback.
func mxResolver() *dnsauth.MockResolver {
	return &dnsauth.MockResolver{
		MX: map[string][]*net.MX{"b.test": {{Host: "mx.b.test.", Pref: 10}}},
		IP: map[string][]net.IP{"mx.b.test": {net.ParseIP("127.0.0.1")}},
	}
}

func newClient(t *testing.T, opts Options) *Client {
	t.Helper()
	if opts.Hostname == "" {
		opts.Hostname = "mta.a.test"
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mxHop(domain string) NextHop { return NextHop{Protocol: SMTP, Host: domain, MX: true} }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDeliverToMX(t *testing.T) {
	rejected := &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	srv := outboundtest.Start(t, outboundtest.Options{RcptReply: func(r string) error {
		if r == "nobody@b.test" {
			return rejected
		}
		return nil
	}})
	c := newClient(t, Options{Resolver: mxResolver(), Port: srv.Port})
	res := c.Deliver(ctxT(t), mxHop("b.test"), &Message{
		From: "alice@a.test", Recipients: []string{"bob@b.test", "nobody@b.test", "carol@b.test"}, Body: bytesBody(testMsg),
	})
	if res[0].Err != nil || res[2].Err != nil {
		t.Fatalf("accepted recipients failed: %+v", res)
	}
	if e := res[1].Err; e == nil || e.Code != 550 || e.EnhancedCode != rejected.EnhancedCode || e.Message != "no such user" {
		t.Fatalf("refused recipient: %+v", res[1])
	}
	if res[1].Remote != "mx.b.test[127.0.0.1]" {
		t.Errorf("remote = %q", res[1].Remote)
	}
	msgs := srv.Wait(t, 1, 10*time.Second)
	m := msgs[0]
	if m.From != "alice@a.test" || strings.Join(m.To, ",") != "bob@b.test,carol@b.test" || m.Helo != "mta.a.test" {
		t.Errorf("envelope: %+v", m)
	}
	if string(m.Data) != testMsg {
		t.Errorf("content changed in transit:\n%q", m.Data)
	}
}

func TestMXFallbackAndNullMX(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{})
	r := mxResolver()
	// The preferred MX is on an address where nothing listens.
	r.MX["b.test"] = []*net.MX{{Host: "dead.b.test", Pref: 5}, {Host: "mx.b.test", Pref: 10}}
	r.IP["dead.b.test"] = []net.IP{net.ParseIP("127.0.0.2")}
	r.MX["null.test"] = []*net.MX{{Host: ".", Pref: 0}}
	c := newClient(t, Options{Resolver: r, Port: srv.Port})
	res := c.Deliver(ctxT(t), mxHop("b.test"), &Message{From: "a@a.test", Recipients: []string{"bob@b.test"}, Body: bytesBody(testMsg)})
	if res[0].Err != nil || res[0].Remote != "mx.b.test[127.0.0.1]" {
		t.Fatalf("fallback: %+v", res[0])
	}
	res = c.Deliver(ctxT(t), mxHop("null.test"), &Message{From: "a@a.test", Recipients: []string{"x@null.test"}, Body: bytesBody(testMsg)})
	if e := res[0].Err; e == nil || e.Code != 556 || e.EnhancedCode != (gosmtp.EnhancedCode{5, 1, 10}) {
		t.Fatalf("null MX: %+v", res[0])
	}
	// Every MX down: a temporary failure.
	r.MX["b.test"] = []*net.MX{{Host: "dead.b.test", Pref: 5}}
	res = c.Deliver(ctxT(t), mxHop("b.test"), &Message{From: "a@a.test", Recipients: []string{"bob@b.test"}, Body: bytesBody(testMsg)})
	if e := res[0].Err; e == nil || e.Code/100 != 4 {
		t.Fatalf("all down: %+v", res[0])
	}
}

// TestNoBareLineEnds sends content with bare CR, bare LF and lines that
// start with a dot: the peer must receive CRLF lines only, with the dots
// intact (they were stuffed on the wire and unstuffed by the peer).
func TestNoBareLineEnds(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{})
	c := newClient(t, Options{Resolver: mxResolver(), Port: srv.Port})
	in := "Subject: smuggle\n\nline\n.\nMAIL FROM:<x@evil>\r.\rnext\r\n..two dots\nlast"
	res := c.Deliver(ctxT(t), mxHop("b.test"), &Message{From: "a@a.test", Recipients: []string{"bob@b.test"}, Body: bytesBody(in)})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	got := string(srv.Wait(t, 1, 10*time.Second)[0].Data)
	want := "Subject: smuggle\r\n\r\nline\r\n.\r\nMAIL FROM:<x@evil>\r\n.\r\nnext\r\n..two dots\r\nlast\r\n"
	if got != want {
		t.Fatalf("received\n%q\nwant\n%q", got, want)
	}
	if hasBareCRorLF([]byte(got)) {
		t.Fatal("bare line end received")
	}
}

func TestSMTPUTF8AndSize(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{MaxSize: 100})
	c := newClient(t, Options{Resolver: mxResolver(), Port: srv.Port})
	res := c.Deliver(ctxT(t), mxHop("b.test"), &Message{From: "a@a.test", Recipients: []string{"bjørn@b.test"}, Body: bytesBody(testMsg), SMTPUTF8: true})
	if e := res[0].Err; e == nil || e.Code != 553 || e.EnhancedCode != (gosmtp.EnhancedCode{5, 6, 7}) || !strings.Contains(e.Message, "SMTPUTF8") {
		t.Fatalf("SMTPUTF8 address to a server without it: %+v", res[0])
	}
	utf8Msg := "From: Bjørn <alice@a.test>\r\nTo: bob@b.test\r\nSubject: hello\r\n\r\nHi Bob.\r\n"
	res = c.Deliver(ctxT(t), mxHop("b.test"), &Message{From: "a@a.test", Recipients: []string{"bob@b.test"}, Body: bytesBody(utf8Msg), SMTPUTF8: true})
	if e := res[0].Err; e == nil || e.EnhancedCode != (gosmtp.EnhancedCode{5, 6, 9}) {
		t.Fatalf("UTF-8 header to a server without SMTPUTF8: %+v", res[0])
	}
	big := bytesBody(strings.Repeat("x", 200))
	res = c.Deliver(ctxT(t), mxHop("b.test"), &Message{From: "a@a.test", Recipients: []string{"bob@b.test"}, Body: big})
	if e := res[0].Err; e == nil || e.Code != 552 || e.EnhancedCode != (gosmtp.EnhancedCode{5, 3, 4}) {
		t.Fatalf("over SIZE: %+v", res[0])
	}
	if srv.Count() != 0 {
		t.Fatal("server received a message it should not have")
	}
	// SMTPUTF8 requested for a message with nothing but ASCII in its
	// envelope and header (clients send it on any mail) is not needed:
	// the message goes to a server without SMTPUTF8, unchanged, and
	// UTF-8 in the body alone does not count.
	ascii := testMsg + "Grüße im Text.\r\n"
	res = c.Deliver(ctxT(t), mxHop("b.test"), &Message{From: "a@a.test", Recipients: []string{"bob@b.test"}, Body: bytesBody(ascii), SMTPUTF8: true})
	if res[0].Err != nil {
		t.Fatalf("ASCII header and envelope with SMTPUTF8 requested, to a server without it: %+v", res[0])
	}
	if srv.Count() != 1 {
		t.Fatalf("server received %d messages, want 1", srv.Count())
	}
	u := outboundtest.Start(t, outboundtest.Options{SMTPUTF8: true})
	c = newClient(t, Options{Resolver: mxResolver(), Port: u.Port})
	res = c.Deliver(ctxT(t), mxHop("b.test"), &Message{From: "a@a.test", Recipients: []string{"bjørn@b.test"}, Body: bytesBody(testMsg), SMTPUTF8: true})
	if res[0].Err != nil {
		t.Fatalf("SMTPUTF8 server: %+v", res[0])
	}
}

func TestSTARTTLS(t *testing.T) {
	cfg, pool := outboundtest.TLSConfig(t, "mx.b.test")
	srv := outboundtest.Start(t, outboundtest.Options{TLS: cfg})
	plain := outboundtest.Start(t, outboundtest.Options{})
	msg := &Message{From: "a@a.test", Recipients: []string{"bob@b.test"}, Body: bytesBody(testMsg)}

	// Opportunistic: encrypted, certificate not checked.
	c := newClient(t, Options{Resolver: mxResolver(), Port: srv.Port})
	if res := c.Deliver(ctxT(t), mxHop("b.test"), msg); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if m := srv.Wait(t, 1, 10*time.Second)[0]; !m.TLS || m.Helo != "mta.a.test" {
		t.Fatalf("TLS %v, EHLO %q after STARTTLS", m.TLS, m.Helo)
	}

	// Verified, against the test's root.
	verify := TLSPolicyFunc(func(context.Context, string) (TLSRequirement, error) { return TLSVerify, nil })
	c = newClient(t, Options{Resolver: mxResolver(), Port: srv.Port, TLSPolicy: verify, TLSConfig: &tls.Config{RootCAs: pool}})
	if res := c.Deliver(ctxT(t), mxHop("b.test"), msg); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	// Verified, without trusting the root: temporary failure.
	c = newClient(t, Options{Resolver: mxResolver(), Port: srv.Port, TLSPolicy: verify})
	if res := c.Deliver(ctxT(t), mxHop("b.test"), msg); res[0].Err == nil || res[0].Err.Code/100 != 4 {
		t.Fatalf("untrusted certificate: %+v", res[0])
	}
	// Required, not offered: temporary failure, nothing sent.
	c = newClient(t, Options{Resolver: mxResolver(), Port: plain.Port, TLSPolicy: verify})
	if res := c.Deliver(ctxT(t), mxHop("b.test"), msg); res[0].Err == nil || res[0].Err.EnhancedCode != (gosmtp.EnhancedCode{4, 7, 5}) {
		t.Fatalf("TLS required, not offered: %+v", res[0])
	}
	if plain.Count() != 0 {
		t.Fatal("message sent in plaintext despite the policy")
	}
}

func TestSmartHostAuth(t *testing.T) {
	cfg, pool := outboundtest.TLSConfig(t, "127.0.0.1")
	users := map[string]string{"relayuser": "s3cret"}
	starttls := outboundtest.Start(t, outboundtest.Options{TLS: cfg, Users: users})
	implicit := outboundtest.Start(t, outboundtest.Options{TLS: cfg, ImplicitTLS: true, Users: users})
	creds := func(host string) *Credentials {
		if host == "127.0.0.1" {
			return &Credentials{Username: "relayuser", Password: "s3cret"}
		}
		return nil
	}
	msg := &Message{From: "a@a.test", Recipients: []string{"someone@far.test"}, Body: bytesBody(testMsg)}
	for _, tc := range []struct {
		relay string
		srv   *outboundtest.Server
	}{
		{"smtp:[127.0.0.1]:" + itoa(starttls.Port), starttls},
		{"smtps:[127.0.0.1]:" + itoa(implicit.Port), implicit},
	} {
		// RelayHost replaces the MX lookup of far.test (which has none).
		c := newClient(t, Options{Resolver: &dnsauth.MockResolver{}, RelayHost: tc.relay,
			Credentials: creds, TLSConfig: &tls.Config{RootCAs: pool}})
		res := c.Deliver(ctxT(t), mxHop("far.test"), msg)
		if res[0].Err != nil {
			t.Fatalf("%s: %v", tc.relay, res[0].Err)
		}
		if m := tc.srv.Wait(t, 1, 10*time.Second)[0]; m.User != "relayuser" || !m.TLS {
			t.Fatalf("%s: user %q TLS %v", tc.relay, m.User, m.TLS)
		}
	}
	// A wrong password is a temporary failure: the message waits for
	// the configuration to be fixed.
	bad := func(string) *Credentials { return &Credentials{Username: "relayuser", Password: "wrong"} }
	c := newClient(t, Options{Resolver: &dnsauth.MockResolver{}, Credentials: bad, TLSConfig: &tls.Config{RootCAs: pool}})
	hop, _ := ParseNextHop("smtp:[127.0.0.1]:" + itoa(starttls.Port))
	if res := c.Deliver(ctxT(t), hop, msg); res[0].Err == nil || res[0].Err.Code/100 != 4 {
		t.Fatalf("bad password: %+v", res[0])
	}
	// Credentials are never sent without TLS.
	plain := outboundtest.Start(t, outboundtest.Options{Users: users})
	c = newClient(t, Options{Resolver: &dnsauth.MockResolver{}, Credentials: creds})
	hop, _ = ParseNextHop("smtp:[127.0.0.1]:" + itoa(plain.Port))
	if res := c.Deliver(ctxT(t), hop, msg); res[0].Err == nil || res[0].Err.Code/100 != 4 {
		t.Fatalf("credentials over plaintext: %+v", res[0])
	}
}

func TestLMTPPerRecipient(t *testing.T) {
	over := &gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 2, 2}, Message: "mailbox full"}
	reply := func(r string) error {
		if r == "full@b.test" {
			return over
		}
		return nil
	}
	tcp := outboundtest.Start(t, outboundtest.Options{LMTP: true, DataReply: reply})
	unix := outboundtest.Start(t, outboundtest.Options{LMTP: true, Unix: true, DataReply: reply})
	c := newClient(t, Options{Resolver: &dnsauth.MockResolver{}})
	for _, spec := range []string{"lmtp:127.0.0.1:" + itoa(tcp.Port), "lmtp:unix:" + unix.Addr} {
		hop, err := ParseNextHop(spec)
		if err != nil {
			t.Fatal(err)
		}
		res := c.Deliver(ctxT(t), hop, &Message{From: "a@a.test", Recipients: []string{"bob@b.test", "full@b.test"}, Body: bytesBody(testMsg)})
		if res[0].Err != nil {
			t.Fatalf("%s: bob: %v", spec, res[0].Err)
		}
		if e := res[1].Err; e == nil || e.Code != 552 || !strings.Contains(e.Message, "mailbox full") {
			t.Fatalf("%s: full: %+v", spec, res[1])
		}
	}
	for _, s := range []*outboundtest.Server{tcp, unix} {
		m := s.Wait(t, 1, 10*time.Second)[0]
		if strings.Join(m.To, ",") != "bob@b.test" || m.Helo != "mta.a.test" {
			t.Fatalf("LMTP peer got %+v", m)
		}
	}
}

// TestConnReuse sends several messages over one connection.
func TestConnReuse(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{})
	c := newClient(t, Options{Resolver: mxResolver(), Port: srv.Port})
	cn, err := c.Open(ctxT(t), mxHop("b.test"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		res := cn.Send(ctxT(t), &Message{From: "a@a.test", Recipients: []string{"bob@b.test"}, Body: bytesBody(testMsg + itoa(i))})
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
	}
	if err := cn.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, 5, 10*time.Second)
	if n := srv.Connections(); n != 1 {
		t.Fatalf("%d connections for 5 messages", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestSendCancelled(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{})
	c := newClient(t, Options{Resolver: mxResolver(), Port: srv.Port})
	cn, err := c.Open(ctxT(t), mxHop("b.test"))
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := cn.Send(ctx, &Message{From: "a@a.test", Recipients: []string{"bob@b.test"}, Body: bytesBody(testMsg)})
	if res[0].Err == nil || res[0].Err.Code/100 != 4 {
		t.Fatalf("cancelled send: %+v", res[0])
	}
	if srv.Count() != 0 {
		t.Fatal("message sent despite the cancelled context")
	}
}

package main

import (
	"bufio"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// silentNameServer reads DNS queries on a loopback UDP socket and answers
// none, as a resolver behind a firewall that drops packets. It returns
// the socket's address and the questions asked so far ("TXT name.").
func silentNameServer(t *testing.T) (string, func() map[string]bool) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	asked := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			if _, err := p.Start(buf[:n]); err != nil {
				continue
			}
			if q, err := p.Question(); err == nil {
				mu.Lock()
				asked[strings.TrimPrefix(q.Type.String(), "Type")+" "+strings.ToLower(q.Name.String())] = true
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().String(), func() map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]bool{}
		for k := range asked {
			out[k] = true
		}
		return out
	}
}

// TestMXWithSilentResolver: with a resolver that never answers and
// dns.timeout = 200ms, a message with two DKIM signatures to a local user
// is accepted (250 at the end of DATA) and delivered, its
// Authentication-Results saying temperror for iprev, SPF, both
// signatures and DMARC, after the server asked the resolver for each of
// them.
func TestMXWithSilentResolver(t *testing.T) {
	resolver, asked := silentNameServer(t)
	s, dir := startMX(t, nil, resolver, 200*time.Millisecond)

	// From 127.0.0.2, whose reverse name /etc/hosts does not answer for
	// 127.0.0.1: the PTR query goes to the silent resolver too.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", s.listening[0][1])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	c := &qaText{t: t, conn: conn, r: textproto.NewReader(bufio.NewReader(conn))}
	msg := signedMessage(t, "x@a.test", dkimKeys(t, "a.test", "s1", "s2")...)
	c.dialog(
		[2]string{"", "220"},
		[2]string{"EHLO client.a.test", "250"},
		[2]string{"MAIL FROM:<x@a.test>", "250"},
		[2]string{"RCPT TO:<u@b.test>", "250"},
		[2]string{"DATA", "354"},
		[2]string{strings.TrimSuffix(string(msg), "\r\n") + "\r\n.", "250"},
		[2]string{"QUIT", "221"},
	)

	ar := deliveredAuthResults(t, dir)
	for _, want := range []string{"iprev=temperror", "spf=temperror", "dkim=temperror", "dmarc=temperror"} {
		if !strings.Contains(ar, want) {
			t.Errorf("Authentication-Results lacks %s:\n%s", want, ar)
		}
	}
	if n := strings.Count(ar, "dkim=temperror"); n != 2 {
		t.Errorf("%d dkim=temperror, want 2:\n%s", n, ar)
	}
	q := asked()
	for _, want := range []string{"PTR 2.0.0.127.in-addr.arpa.", "TXT a.test.", "TXT s1._domainkey.a.test.", "TXT s2._domainkey.a.test.", "TXT _dmarc.a.test."} {
		if !q[want] {
			t.Errorf("the resolver was not asked %s (asked %v)", want, q)
		}
	}
}

package dnsauth

import (
	"context"
	"errors"
	"net"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// Serve answers DNS queries arriving on pc (UDP) from m's records until pc
// is closed, when it returns nil. It lets programs that cannot take a
// Resolver, outside programs in interop tests or a server started from
// its configuration file, see the same test records, through
// NewServerResolver or their own resolver settings. Answers name errors
// for absent names and SERVFAIL for injected failures; it knows TXT, MX,
// A, AAAA and PTR.
//
// Each query is answered on its own goroutine, so a name in Hang leaves
// its query unanswered without holding up the others.
func (m *MockResolver) Serve(pc net.PacketConn) error {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for {
		buf := make([]byte, 1500)
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if reply := m.answer(ctx, buf[:n]); reply != nil {
				pc.WriteTo(reply, addr)
			}
		}()
	}
}

// answer builds the reply to one query from m's records; nil for a
// query it cannot parse.
func (m *MockResolver) answer(ctx context.Context, query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err == nil && h.Response {
		return nil
	}
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := q.Name.String()
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	var bodies []dnsmessage.ResourceBody
	var lerr error
	switch q.Type {
	case dnsmessage.TypeTXT:
		var txts []string
		txts, lerr = m.LookupTXT(ctx, name)
		for _, s := range txts {
			bodies = append(bodies, &dnsmessage.TXTResource{TXT: splitTXT(s)})
		}
	case dnsmessage.TypeMX:
		var mxs []*net.MX
		mxs, lerr = m.LookupMX(ctx, name)
		for _, mx := range mxs {
			bodies = append(bodies, &dnsmessage.MXResource{Pref: mx.Pref, MX: dnsmessage.MustNewName(mx.Host)})
		}
	case dnsmessage.TypeA, dnsmessage.TypeAAAA:
		var addrs []net.IPAddr
		addrs, lerr = m.LookupIPAddr(ctx, name)
		for _, a := range addrs {
			if ip4 := a.IP.To4(); ip4 != nil && q.Type == dnsmessage.TypeA {
				bodies = append(bodies, &dnsmessage.AResource{A: [4]byte(ip4)})
			} else if ip4 == nil && q.Type == dnsmessage.TypeAAAA {
				bodies = append(bodies, &dnsmessage.AAAAResource{AAAA: [16]byte(a.IP.To16())})
			}
		}
	case dnsmessage.TypePTR:
		var names []string
		if ip := ReverseNameIP(name); ip != nil {
			names, lerr = m.LookupAddr(ctx, ip.String())
		}
		for _, n := range names {
			bodies = append(bodies, &dnsmessage.PTRResource{PTR: dnsmessage.MustNewName(n)})
		}
	}
	rcode := dnsmessage.RCodeSuccess
	var de *net.DNSError
	if errors.As(lerr, &de) && de.IsNotFound {
		rcode = dnsmessage.RCodeNameError
	} else if lerr != nil {
		rcode = dnsmessage.RCodeServerFailure
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: rcode})
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	for _, body := range bodies {
		rh := rh
		switch body := body.(type) {
		case *dnsmessage.TXTResource:
			b.TXTResource(rh, *body)
		case *dnsmessage.MXResource:
			b.MXResource(rh, *body)
		case *dnsmessage.AResource:
			b.AResource(rh, *body)
		case *dnsmessage.AAAAResource:
			b.AAAAResource(rh, *body)
		case *dnsmessage.PTRResource:
			b.PTRResource(rh, *body)
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// splitTXT cuts a TXT value into the character-strings of at most 255
// bytes the wire format holds (RFC 1035 section 3.3.14), as a zone file
// holding an RSA-2048 DKIM key must; resolvers join them again.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}

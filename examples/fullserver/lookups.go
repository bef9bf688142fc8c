package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/smtp"
)

// The MX checks a message in the three steps the SMTP dialogue orders:
// iprev when the client connects, SPF at MAIL, DKIM and DMARC at the end
// of DATA. smtp.SenderAuth makes the lookups of a step one after the
// other, so on a resolver that does not answer each of them costs a whole
// dns.timeout. Within a step, some do not depend on each other: the DKIM
// key of every signature and the DMARC record of the From domain (and of
// its organizational domain) at the end of DATA, the forward lookups of
// each reverse name of the client for iprev. concurrentChecks starts
// those together, the moment their names are known, and sharedLookups,
// the Resolver SenderAuth asks, hands it the answer or the lookup in
// flight instead of asking again. A step then takes one lookup's time
// for its independent lookups, and a resolver that does not answer costs
// a message three timeouts (iprev, SPF, DKIM and DMARC together); each
// check records temperror, and the message is accepted.

// maxPrefetch bounds the lookups started ahead for one step: the DKIM
// signatures dnsauth verifies, plus two DMARC records; or the reverse
// names iprev checks.
const maxPrefetch = dnsauth.DKIMMaxSignatures + 2

// Lookup kinds in a lookupScope.
const (
	kindTXT = iota
	kindIP
)

type lookupKey struct {
	kind int
	name string
}

// lookup is one query started ahead; done is closed once txt or addrs,
// and err, are set.
type lookup struct {
	done  chan struct{}
	txt   []string
	addrs []net.IPAddr
	err   error
}

// lookupScope holds the lookups started ahead for one step of one
// session. It travels in the step's context, from concurrentChecks to
// sharedLookups.
type lookupScope struct {
	ctx    context.Context // canceled when the step ends
	r      dnsauth.Resolver
	wg     sync.WaitGroup
	mu     sync.Mutex
	m      map[lookupKey]*lookup
	iprevs bool // start the forward lookups of the names LookupAddr returns
}

type scopeKey struct{}

func lookupKeyOf(kind int, name string) lookupKey {
	return lookupKey{kind, strings.ToLower(strings.TrimSuffix(name, "."))}
}

// newScope returns ctx carrying a new scope whose lookups go to r, and
// the function that ends the scope: it cancels what is still in flight
// and waits for it.
func newScope(ctx context.Context, r dnsauth.Resolver) (context.Context, *lookupScope, func()) {
	sctx, cancel := context.WithCancel(ctx)
	s := &lookupScope{ctx: sctx, r: r, m: map[lookupKey]*lookup{}}
	return context.WithValue(ctx, scopeKey{}, s), s, func() {
		cancel()
		s.wg.Wait()
	}
}

// start begins the lookup of name unless the scope already has it or is
// full.
func (s *lookupScope) start(kind int, name string) {
	k := lookupKeyOf(kind, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; ok || len(s.m) >= maxPrefetch || k.name == "" {
		return
	}
	l := &lookup{done: make(chan struct{})}
	s.m[k] = l
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(l.done)
		if kind == kindTXT {
			l.txt, l.err = s.r.LookupTXT(s.ctx, name)
		} else {
			l.addrs, l.err = s.r.LookupIPAddr(s.ctx, name)
		}
	}()
}

// find returns the lookup of name started in ctx's scope, or nil.
func find(ctx context.Context, kind int, name string) *lookup {
	s, _ := ctx.Value(scopeKey{}).(*lookupScope)
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[lookupKeyOf(kind, name)]
}

// wait returns when l is done or ctx ends, with the error a lookup
// cut short by ctx would have had.
func (l *lookup) wait(ctx context.Context, name string) error {
	select {
	case <-l.done:
		return l.err
	case <-ctx.Done():
		return &net.DNSError{Err: ctx.Err().Error(), Name: name, IsTimeout: errors.Is(ctx.Err(), context.DeadlineExceeded)}
	}
}

// sharedLookups is the Resolver of the MX's checks: a lookup already
// started in the context's scope is answered from there, any other goes
// to the Resolver it wraps.
type sharedLookups struct {
	dnsauth.Resolver
}

func (r sharedLookups) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if l := find(ctx, kindTXT, name); l != nil {
		if err := l.wait(ctx, name); err != nil {
			return nil, err
		}
		return l.txt, nil
	}
	return r.Resolver.LookupTXT(ctx, name)
}

func (r sharedLookups) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if l := find(ctx, kindIP, host); l != nil {
		if err := l.wait(ctx, host); err != nil {
			return nil, err
		}
		return l.addrs, nil
	}
	return r.Resolver.LookupIPAddr(ctx, host)
}

// LookupAddr starts the forward lookups of every name returned, for
// iprev, before returning them.
func (r sharedLookups) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	names, err := r.Resolver.LookupAddr(ctx, addr)
	if s, _ := ctx.Value(scopeKey{}).(*lookupScope); s != nil && s.iprevs && err == nil {
		for _, n := range names {
			s.start(kindIP, n)
		}
	}
	return names, err
}

// concurrentChecks runs SenderAuth's checks with their independent
// lookups started together (see above). auth.Resolver must be a
// sharedLookups over r.
type concurrentChecks struct {
	auth *smtp.SenderAuth
	r    dnsauth.Resolver
}

// checks returns c in the hooks of smtp.Checks that it speeds up, and
// SenderAuth itself in the others.
func (c concurrentChecks) checks() smtp.Checks {
	return smtp.Checks{Connect: []smtp.ConnectChecker{c}, Mail: []smtp.MailChecker{c.auth}, Message: []smtp.MessageChecker{c}}
}

// CheckConnect is SenderAuth's iprev, with the forward lookups of the
// client's reverse names started together.
func (c concurrentChecks) CheckConnect(ctx context.Context, env *smtp.Envelope) smtp.Verdict {
	ctx, s, end := newScope(ctx, c.r)
	defer end()
	s.iprevs = true
	return c.auth.CheckConnect(ctx, env)
}

// CheckMessage is SenderAuth's DKIM and DMARC, with every signature's
// key and the From domain's DMARC records looked up together.
func (c concurrentChecks) CheckMessage(ctx context.Context, env *smtp.Envelope, msg smtp.Body) smtp.Verdict {
	ctx, s, end := newScope(ctx, c.r)
	defer end()
	if hdr, err := readHeader(msg); err == nil {
		for _, name := range messageLookups(hdr) {
			s.start(kindTXT, name)
		}
	}
	return c.auth.CheckMessage(ctx, env, msg)
}

// readHeader returns the message's header, up to dnsauth.MaxHeaderBytes.
func readHeader(msg smtp.Body) ([]byte, error) {
	r, err := msg.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	br := bufio.NewReader(io.LimitReader(r, dnsauth.MaxHeaderBytes))
	var hdr bytes.Buffer
	for {
		line, err := br.ReadBytes('\n')
		hdr.Write(line)
		if err != nil || len(bytes.TrimRight(line, "\r\n")) == 0 {
			return hdr.Bytes(), nil
		}
	}
}

// messageLookups returns the TXT names DKIM and DMARC will look up for a
// message with header hdr: each signature's key, then the From domain's
// DMARC record and its organizational domain's.
func messageLookups(hdr []byte) []string {
	var names []string
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(hdr))).ReadMIMEHeader()
	for i, v := range h.Values("DKIM-Signature") {
		if i == dnsauth.DKIMMaxSignatures {
			break
		}
		tags, err := dnsauth.ParseDKIMTags(v)
		if err != nil {
			continue
		}
		s, d := strings.Join(strings.Fields(tags["s"]), ""), strings.Join(strings.Fields(tags["d"]), "")
		if s != "" && d != "" {
			names = append(names, s+"._domainkey."+d)
		}
	}
	if from, err := dnsauth.FromDomain(hdr); err == nil && from != "" {
		names = append(names, "_dmarc."+from)
		if org := dnsauth.OrganizationalDomain(from); org != strings.ToLower(strings.TrimSuffix(from, ".")) {
			names = append(names, "_dmarc."+org)
		}
	}
	return names
}

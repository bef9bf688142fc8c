// Package mailtest runs complete mailagent stacks in-process for tests of
// mail flows: a directory in SQLite, Maildirs, the MX, submission and LMTP
// servers, the outbound queue, IMAP and POP3, all on loopback with
// temporary directories and a mock DNS, torn down by t.Cleanup. Each is
// assembled as examples/fullserver assembles its own (one package,
// internal/stack, wires both).
//
// Several servers on one Network exchange mail through MX lookups in the
// shared mock DNS, with SPF, DKIM, DMARC and iprev records published for
// each, so cross-domain flows authenticate as they would on the Internet:
//
//	net := mailtest.NewNetwork()
//	a := mailtest.NewServer(t, mailtest.WithDomain("a.test"), mailtest.WithNetwork(net))
//	b := mailtest.NewServer(t, mailtest.WithDomain("b.test"), mailtest.WithNetwork(net))
//	a.AddUser("alice@a.test", "pw")
//	b.AddUser("bob@b.test", "pw")
//	a.Submit("alice@a.test", "pw", "alice@a.test", []string{"bob@b.test"}, msg)
//	m := b.WaitMessage("bob@b.test", "INBOX")
package mailtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/imap"
	"github.com/mailagent/mailagent/internal/connlimit"
	"github.com/mailagent/mailagent/internal/stack"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/pop3"
	"github.com/mailagent/mailagent/smtp"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/queue"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

// Server is one mail domain's complete stack. Its fields are the parts,
// for tests that need to reach past the helpers.
type Server struct {
	// Domain is the server's first local domain; Hostname its MX host
	// name ("mx." + Domain) and IP its address on the Network.
	Domain, Hostname string
	IP               net.IP
	Network          *Network

	Store    *store.SQL
	Maildirs *maildir.Store
	Auth     *auth.Authenticator
	Queue    *queue.Queue
	Router   *router.Router
	DKIM     []*dnsauth.DKIMKey

	// Listener addresses ("127.0.0.N:port").
	MXAddr, SubmissionAddr, LMTPAddr, IMAPAddr, POP3Addr string

	// ClientTLS trusts the server's self-signed certificate.
	ClientTLS *tls.Config
	// TLS is the servers' configuration (auth.TLSIntermediate), and
	// MXTLS the MX's (auth.TLSOld), as examples/fullserver has them by
	// default.
	TLS, MXTLS *tls.Config

	t      testing.TB
	dir    string
	logger *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	stack  *stack.Stack
	// conns counts the connections of all the stack's listeners
	// together, as examples/fullserver does for a process.
	conns *connlimit.Limiter
}

type options struct {
	driver  string
	dsn     string
	domain  string
	network *Network
	logger  *slog.Logger
	dmarc   string
	// maxConns and maxConnsPerIP are the stack's connection limits.
	maxConns, maxConnsPerIP int
}

// Option configures NewServer.
type Option func(*options)

// WithDomain sets the server's domain (default "example.test").
func WithDomain(domain string) Option { return func(o *options) { o.domain = domain } }

// WithNetwork puts the server on n, shared with other servers (default: a
// network of its own).
func WithNetwork(n *Network) Option { return func(o *options) { o.network = n } }

// WithLogger sends the stack's logs to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithStore keeps the directory in the given database instead of a
// temporary SQLite file, e.g. ("mysql", "root@tcp(127.0.0.1:3306)/mail").
// A database made by the seed installation's SQL is migrated in place
// (store.Options.Migrate), so the DSN's user needs the rights to.
func WithStore(driver, dsn string) Option {
	return func(o *options) { o.driver, o.dsn = driver, dsn }
}

// WithConnectionLimits bounds the connections open at once on all the
// stack's listeners together (SMTP, submission, LMTP, IMAP, POP3), in
// total and from one client address (an IPv4 address or IPv6 /64); the
// default is 1000 for both, since a test's clients all come from the
// loopback. A connection over a limit gets its protocol's busy reply.
func WithConnectionLimits(total, perIP int) Option {
	return func(o *options) { o.maxConns, o.maxConnsPerIP = total, perIP }
}

// WithDMARCPolicy publishes p=policy ("none", "quarantine", "reject") in
// the domain's DMARC record instead of the p=none a new domain starts at.
func WithDMARCPolicy(policy string) Option { return func(o *options) { o.dmarc = policy } }

// NewServer starts a complete stack and registers its shutdown with
// t.Cleanup. It fails the test on any set-up error.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{domain: "example.test", maxConns: 1000, maxConnsPerIP: 1000}
	for _, f := range opts {
		f(&o)
	}
	if o.network == nil {
		o.network = NewNetwork()
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{Domain: o.domain, Hostname: "mx." + o.domain, Network: o.network, t: t, dir: t.TempDir(), logger: o.logger,
		conns: connlimit.New(o.maxConns, o.maxConnsPerIP)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(s.close)
	if err := s.start(o); err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	return s
}

func (s *Server) start(o options) error {
	ctx := s.ctx
	ip, err := s.Network.allocate(s.Domain)
	if err != nil {
		return err
	}
	s.IP = ip
	if o.driver == "" {
		o.driver, o.dsn = store.DriverSQLite, filepath.Join(s.dir, "mailagent.db")
	}
	if err := s.setupTLS(); err != nil {
		return err
	}
	if err := s.publishDNS(o); err != nil {
		return err
	}
	var lns [5]net.Listener // MX, submission, LMTP, IMAP, POP3
	for i := range lns {
		if lns[i], err = net.Listen("tcp", net.JoinHostPort(s.IP.String(), "0")); err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			return err
		}
	}
	s.MXAddr, s.SubmissionAddr, s.LMTPAddr = lns[0].Addr().String(), lns[1].Addr().String(), lns[2].Addr().String()
	s.IMAPAddr, s.POP3Addr = lns[3].Addr().String(), lns[4].Addr().String()

	checks := (&smtp.SenderAuth{Resolver: s.Network.Resolver, Logger: s.logger}).Checks()
	s.stack, err = stack.New(ctx, stack.Config{
		Hostname:    s.Hostname,
		Logger:      s.logger,
		Store:       stack.StoreConfig{Driver: o.driver, DSN: o.dsn, Options: store.Options{Migrate: true}},
		MaildirBase: filepath.Join(s.dir, "mail"),
		Resolver:    s.Network.Resolver,
		TLS:         s.TLS,
		ConnLimiter: s.conns,
		Auth:        &auth.Authenticator{Logger: s.logger, Argon2: testArgon2},
		Outbound: outbound.Options{
			Dialer: dialer{n: s.Network, ip: s.IP},
			// The peers on the network use self-signed certificates;
			// opportunistic TLS still encrypts.
			TLSConfig: &tls.Config{InsecureSkipVerify: true},
		},
		Queue: queue.Options{
			Dir:        filepath.Join(s.dir, "queue"),
			MinBackoff: 50 * time.Millisecond,
			MaxBackoff: 200 * time.Millisecond,
		},
		SMTP: []stack.Listener[smtp.Options]{
			{Name: "mx", Listener: lns[0], Options: smtp.Options{Role: smtp.MX, Checks: checks, TLSConfig: s.MXTLS, SpoolDir: s.dir}},
			{Name: "submission", Listener: lns[1], Options: smtp.Options{Role: smtp.Submission, SpoolDir: s.dir,
				Signer: smtp.DKIMSigner{Signer: dnsauth.NewSigner(s.DKIM)}}},
			{Name: "lmtp", Listener: lns[2], Options: smtp.Options{Role: smtp.LMTP, SpoolDir: s.dir}},
		},
		IMAP: []stack.Listener[imap.Options]{{Name: "imap", Listener: lns[3]}},
		POP3: []stack.Listener[pop3.Options]{{Name: "pop3", Listener: lns[4]}},
	})
	if err != nil {
		return err
	}
	s.Store, s.Maildirs, s.Auth, s.Queue, s.Router = s.stack.Directory, s.stack.Maildirs, s.stack.Auth, s.stack.Queue, s.stack.Router
	if err := s.Store.AddDomain(ctx, s.Domain); err != nil && !errors.Is(err, store.ErrExists) {
		return err
	}
	s.stack.Serve()
	s.Network.setMX(s.IP, s.MXAddr)
	return nil
}

// testArgon2 keeps password hashing cheap: tests log in often, and the
// production parameters cost 64 MiB and tens of milliseconds each.
var testArgon2 = auth.Argon2Params{Time: 1, Memory: 1024, Threads: 1}

func (s *Server) setupTLS() error {
	certFile, keyFile, err := auth.SelfSigned(filepath.Join(s.dir, "tls"), s.Hostname)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	get := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
	s.TLS = auth.TLSIntermediate.Config(get)
	s.MXTLS = auth.TLSOld.Config(get)
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return errors.New("self-signed certificate not readable")
	}
	s.ClientTLS = &tls.Config{RootCAs: pool, ServerName: s.Hostname}
	return nil
}

// publishDNS generates the domain's DKIM key and publishes exactly the
// records dnsauth.Records says the domain needs.
func (s *Server) publishDNS(o options) error {
	key, err := dnsauth.GenerateDKIMKey(s.Domain, "mailtest", dnsauth.DKIMAlgoEd25519)
	if err != nil {
		return err
	}
	s.DKIM = []*dnsauth.DKIMKey{key}
	recs, err := dnsauth.Records(dnsauth.DomainSetup{Domain: s.Domain, MailHost: s.Hostname, IPs: []net.IP{s.IP}, DKIM: s.DKIM})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if o.dmarc != "" && r.Type == "TXT" && dnsauth.IsDMARCRecord(r.Value) {
			r.Value = "v=DMARC1; p=" + o.dmarc + "; rua=mailto:postmaster@" + s.Domain
		}
		if err := s.Network.Resolver.AddRecord(r); err != nil {
			return err
		}
	}
	return nil
}

// StopMX takes the server off the network for mail from other servers:
// their deliveries fail temporarily until StartMX.
func (s *Server) StopMX() {
	s.Network.mu.Lock()
	delete(s.Network.mx, s.IP.String())
	s.Network.mu.Unlock()
}

// StartMX puts the server back after StopMX.
func (s *Server) StartMX() { s.Network.setMX(s.IP, s.MXAddr) }

func (s *Server) close() {
	s.cancel()
	if s.stack != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.stack.Shutdown(ctx)
	}
}

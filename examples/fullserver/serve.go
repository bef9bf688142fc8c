package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/examples/fullserver/config"
	"github.com/mailagent/mailagent/internal/connlimit"
	"github.com/mailagent/mailagent/internal/proxy"
	"github.com/mailagent/mailagent/internal/stack"
	"github.com/mailagent/mailagent/internal/unixsock"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/queue"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

// server is the assembled mail server: every component of mailagent wired
// as the seed's Postfix + Dovecot + MySQL installation is.
type server struct {
	cfg    *config.Config
	log    *slog.Logger
	out    io.Writer // the banner
	stats  *metrics
	dir    *store.SQL
	mail   *maildir.Store
	queue  *queue.Queue
	certs  *auth.CertReloader // nil under ACME
	acme   *acmeCerts         // tls.acme: certificates from the CA
	signer dkimSigner
	tlsCfg *tls.Config
	// proxy is the proxy role's relay (proxy.enabled), else nil.
	proxy *proxy.Proxy
	// mxTLS is the MX's TLS configuration, of tls.mx_profile.
	mxTLS *tls.Config
	// auth checks every login, for every listener.
	auth *auth.Authenticator
	// resolver answers the server's DNS lookups, through
	// dnsauth.WithTimeout(dns.timeout); nil: the one cfg.DNS names.
	resolver dnsauth.Resolver

	// shutdowns run in reverse order when the server stops.
	shutdowns []func(context.Context) error
	// conns counts the connections of every listener together:
	// limits.max_connections and limits.max_connections_per_ip hold for
	// the whole process, not for each listener.
	conns *connlimit.Limiter
	// listening is what the banner reports: name → address.
	listening [][2]string
	// prebound are the listeners opened before dropping privileges,
	// by name, until their setup takes them (privdrop.go).
	prebound  map[string]net.Listener
	serveErrs chan error
}

// cmdServe runs the mail server.
func cmdServe(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("serve takes no arguments: %w", errUsage)
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	format := cfg.Log.Format
	if e.logFormat != "" {
		format = e.logFormat
	}
	log, err := newLogger(e.stderr, format, cfg.Log.Level)
	if err != nil {
		return err
	}
	return runServer(ctx, cfg, log, e.stdout)
}

// newLogger returns the server's logger: text for people, JSON for log
// collectors.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}

// runServer serves until SIGTERM or SIGINT, then drains and returns nil.
func runServer(ctx context.Context, cfg *config.Config, log *slog.Logger, out io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s := &server{cfg: cfg, log: log, out: out, serveErrs: make(chan error, 16)}
	if err := s.start(ctx); err != nil {
		s.stop()
		return err
	}
	s.banner()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			s.reload(ctx)
		case err := <-s.serveErrs:
			s.log.Error("listener failed", "err", err)
			s.stop()
			return err
		case <-ctx.Done():
			s.log.Info("shutting down")
			s.stop()
			return nil
		}
	}
}

func (s *server) start(ctx context.Context) error {
	cfg := s.cfg
	s.stats = newMetrics()
	s.log = slog.New(s.stats.handler(s.log.Handler()))
	if err := preflight(cfg); err != nil {
		return err
	}
	if err := s.dropPrivileges(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}

	if err := s.setupTLS(); err != nil {
		return err
	}
	if cfg.Proxy.Enabled {
		// A proxy holds no mail: the directory (where each user's
		// backend is) is all it needs of the stack.
		var err error
		if s.dir, err = openDirectory(ctx, cfg, s.storeOptions()); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		s.onStop(func(context.Context) error { return s.dir.Close() })
		return s.startProxy(ctx)
	}
	resolver := s.resolver
	switch {
	case resolver != nil:
	case cfg.DNS.Resolver != "":
		resolver = dnsauth.NewServerResolver(cfg.DNS.Resolver)
	default:
		resolver = net.DefaultResolver
	}
	resolver = dnsauth.WithTimeout(resolver, cfg.DNS.Timeout.Duration)

	sc, err := s.stackConfig(resolver)
	if err != nil {
		return err
	}
	st, err := stack.New(ctx, sc)
	var se *store.SchemaError
	if errors.As(err, &se) {
		return fmt.Errorf("store: %w", directoryError(se))
	}
	if err != nil {
		return err
	}
	s.onStop(st.Shutdown)
	s.dir, s.mail, s.queue, s.auth = st.Directory, st.Maildirs, st.Queue, st.Auth
	s.stats.watchQueue(s.queue)
	s.stats.watchAuth(s.auth)
	if err := s.startControl(); err != nil {
		return err
	}
	st.Serve()
	if err := s.setupMetrics(); err != nil {
		return err
	}
	// Only a server that came up creates the first user: a password
	// "shown only now" must not be printed by a start that then fails.
	return s.firstRun(ctx)
}

// firstRun creates the domain "localhost" and postmaster@localhost with a
// generated password, printed once, when the directory is empty.
func (s *server) firstRun(ctx context.Context) error {
	domains, err := s.dir.ListDomains(ctx)
	if err != nil || len(domains) > 0 {
		return err
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	password := base64.RawURLEncoding.EncodeToString(b[:])
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	if err := s.dir.AddDomain(ctx, "localhost"); err != nil {
		return err
	}
	if err := s.dir.AddUser(ctx, &store.User{Address: "postmaster@localhost", PasswordHash: hash}); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "First run: created domain localhost and user postmaster@localhost\n"+
		"  password: %s   (shown only now; change it with: fullserver user passwd postmaster@localhost)\n\n", password)
	return nil
}

func (s *server) setupTLS() error {
	var getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	if s.cfg.TLS.ACME {
		a, err := s.setupACME()
		if err != nil {
			return err
		}
		s.acme, getCert = a, a.GetCertificate
	} else {
		certFile, keyFile := s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile
		if certFile == "" {
			var err error
			if certFile, keyFile, err = auth.SelfSigned(filepath.Join(s.cfg.DataDir, "tls"), s.cfg.Hostname); err != nil {
				return fmt.Errorf("self-signed certificate: %w", err)
			}
		}
		r, err := auth.NewCertReloader(certFile, keyFile, auth.CertReloaderOptions{Logger: s.log})
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		s.certs, getCert = r, r.GetCertificate
	}
	// Validate has checked the profile names.
	profile, _ := auth.ParseTLSProfile(s.cfg.TLS.Profile)
	mxProfile, _ := auth.ParseTLSProfile(s.cfg.TLS.MXProfile)
	s.tlsCfg = profile.Config(getCert)
	s.mxTLS = mxProfile.Config(getCert)
	return nil
}

// storeOptions are the directory's options as the server uses it.
func (s *server) storeOptions() *store.Options {
	return &store.Options{
		Logger:       s.log,
		Resolve:      resolveOptions(s.cfg),
		QueryTimeout: s.cfg.Store.QueryTimeout.Duration,
		CacheTTL:     5 * time.Second,
		ChangePoll:   s.cfg.Store.ChangePoll.Duration,
	}
}

// stackConfig describes the mail stack (directory, Maildirs, queue,
// router, servers) of the configuration, opening its listeners.
func (s *server) stackConfig(resolver dnsauth.Resolver) (stack.Config, error) {
	cfg := s.cfg
	sc := stack.Config{
		Hostname:    cfg.Hostname,
		Logger:      s.log,
		Store:       stack.StoreConfig{Driver: cfg.Store.Driver, DSN: cfg.StoreDSN(), Options: *s.storeOptions()},
		MaildirBase: cfg.Path(cfg.Maildir.Base, "mail"),
		Maildir: maildir.Options{MaxMessageSize: cfg.Limits.MaxMessageBytes,
			PollInterval: cfg.Maildir.PollInterval.Duration, NoWatcher: !cfg.Maildir.Watcher,
			MaxFolders: cfg.Limits.MaxFolders, MaxFolderDepth: cfg.Limits.MaxFolderDepth},
		Resolver: resolver,
		TLS:      s.tlsCfg,
		// One limiter for every listener: limits.max_connections and
		// limits.max_connections_per_ip hold for the whole process.
		ConnLimiter: connlimit.New(cfg.Limits.MaxConnections, cfg.Limits.MaxConnectionsPerIP),
		Outbound:    outbound.Options{Port: cfg.Queue.Port},
		Queue: queue.Options{
			Dir:            cfg.Path(cfg.Queue.Dir, "queue"),
			MinBackoff:     cfg.Queue.MinBackoff.Duration,
			MaxBackoff:     cfg.Queue.MaxBackoff.Duration,
			MaxLifetime:    cfg.Queue.MaxAge.Duration,
			PerDestination: cfg.Queue.PerDestination,
			// Long enough for a peer that is adopting this spool's
			// messages to finish.
			LockWait:      30 * time.Second,
			Peers:         cfg.Queue.Peers,
			AdoptInterval: cfg.Queue.AdoptInterval.Duration,
		},
		Local: &local.Delivery{QuotaTempFail: cfg.Maildir.QuotaFullTempfail,
			JunkFolder: func(u *store.User) string { return cfg.Junk.JunkFolder(u.Address) }},
		WrapLocal: s.stats.countDeliveries,
		Router:    router.Options{Resolve: resolveOptions(cfg)},
		// Transport-table next hops go through the queue too, so that a
		// down LMTP or smart host never loses acknowledged mail.
		QueueTransports: true,
		// QuarantineHop is set once the LMTP listener is bound.
		ServeError: func(name string, err error) {
			s.serveErrs <- fmt.Errorf("%s: %w", name, err)
		},
	}
	s.conns = sc.ConnLimiter
	if cfg.Maildir.Sieve {
		// The stack sends vacation replies through its queue.
		// What scripts send as (vacation :from, a redirect's edited From)
		// passes submission's sender rule and is signed like it.
		// The directory is the one the stack opens and gives sc.Local.
		if _, err := smtp.SenderCheck(nil, resolveOptions(cfg), cfg.SendAs); err != nil {
			return sc, err
		}
		ld := sc.Local
		check := sync.OnceValue(func() func(context.Context, string, string) error {
			c, _ := smtp.SenderCheck(ld.Directory, resolveOptions(cfg), cfg.SendAs)
			return c
		})
		mayUse := func(ctx context.Context, user, addr string) error { return check()(ctx, user, addr) }
		sf := &local.SieveFilter{MaildirBase: sc.MaildirBase, Before: cfg.Maildir.SieveBefore,
			After: cfg.Maildir.SieveAfter, GlobalDir: cfg.Maildir.SieveGlobalDir, Logger: s.log, MayUse: mayUse}
		if cfg.DKIM.Sign {
			sf.Signer = &s.signer
		}
		if cfg.Maildir.SieveRedirectSender == "user" {
			sf.RedirectSender = func(u *store.User, _ *mail.Envelope, _ string) string { return u.Address }
		}
		sc.Local.Filter = sf
	}
	if err := s.relayOptions(&sc.Outbound); err != nil {
		return sc, err
	}
	if err := s.smtpListeners(&sc, resolver); err != nil {
		sc.CloseListeners()
		return sc, err
	}
	if err := s.accessListeners(&sc); err != nil {
		sc.CloseListeners()
		return sc, err
	}
	return sc, nil
}

// relayOptions sets the outbound client's smart host (relay.*).
func (s *server) relayOptions(opts *outbound.Options) error {
	cfg := s.cfg
	if cfg.Relay.Host != "" {
		scheme := "smtp"
		if cfg.Relay.ImplicitTLS {
			scheme = "smtps"
		}
		host, port, _ := net.SplitHostPort(cfg.Relay.Host)
		host = strings.Trim(host, "[]")
		opts.RelayHost = scheme + ":[" + host + "]:" + port
		if cfg.Relay.Username != "" {
			creds := &outbound.Credentials{Username: cfg.Relay.Username, Password: cfg.Relay.Password}
			opts.Credentials = func(h string) *outbound.Credentials {
				if strings.EqualFold(h, host) {
					return creds
				}
				return nil
			}
		}
	}
	if cfg.Relay.CAFile != "" {
		tc, err := relayTLSConfig(cfg.Relay.CAFile)
		if err != nil {
			return err
		}
		opts.TLSConfig = tc
	}
	return nil
}

// smtpListeners adds the MX, submission and LMTP servers that listen.
func (s *server) smtpListeners(sc *stack.Config, resolver dnsauth.Resolver) error {
	cfg := s.cfg
	var signer mail.Signer
	if cfg.DKIM.Sign {
		if err := s.signer.load(cfg.Path(cfg.DKIM.KeyDir, "dkim")); err != nil {
			return err
		}
		signer = &s.signer
	}
	// The MX's checks: iprev at EHLO, SPF at MAIL, DKIM and DMARC at the
	// end of DATA. The library makes the lookups of a step that do not
	// depend on each other together (the forward lookups of every reverse
	// name; every signature's key and the From domain's DMARC record, the
	// organizational domain's following when the From domain has none),
	// so a resolver that does not answer costs a message three
	// dns.timeout, and it is accepted with temperror results.
	sender := &smtp.SenderAuth{
		Resolver:      resolver,
		RejectSPFFail: cfg.Policy.SPF == "reject",
		RequirePTR:    cfg.Policy.IPRev == "require",
		DMARC:         dmarcMode(cfg.Policy.DMARC),
		Logger:        s.log,
	}
	base := smtp.Options{
		PostmasterDomain: cfg.PostmasterDomain,
		Resolve:          resolveOptions(cfg),
		MaxMessageBytes:  cfg.Limits.MaxMessageBytes,
		MaxRecipients:    cfg.Limits.MaxRecipients,
		MaxAuthFailures:  cfg.Limits.MaxAuthFailures,
		ReadTimeout:      cfg.Limits.SMTPCommandTimeout.Duration,
		LoginTimeout:     cfg.Limits.LoginTimeout.Duration,
		MinDataRate:      cfg.Limits.MinDataRate,
		DataRateGrace:    cfg.Limits.DataRateGrace.Duration,
	}
	// Validate has checked these.
	lmtpNets, _ := cfg.Listen.LMTPPrefixes()
	roles := []struct {
		name, addr string
		apply      func(*smtp.Options)
	}{
		{"mx", cfg.Listen.MX, func(o *smtp.Options) {
			o.Role, o.Checks, o.TLSConfig = smtp.MX, sender.Checks(), s.mxTLS
			o.Checks.Filters = milters(cfg, cfg.Milter.MX, "mx", s.log)
		}},
		{"submission", cfg.Listen.Submission, func(o *smtp.Options) {
			o.Role, o.Signer, o.SendAs = smtp.Submission, signer, cfg.SendAs
			o.Checks.Filters = milters(cfg, cfg.Milter.Submission, "submission", s.log)
		}},
		{"submissions", cfg.Listen.Submissions, func(o *smtp.Options) {
			o.Role, o.Signer, o.ImplicitTLS = smtp.Submission, signer, true
			o.SendAs = cfg.SendAs
			o.Checks.Filters = milters(cfg, cfg.Milter.Submission, "submissions", s.log)
		}},
		{"lmtp", cfg.Listen.LMTP, func(o *smtp.Options) {
			o.Role, o.LMTPNetworks = smtp.LMTP, lmtpNets
			o.Checks.Filters = milters(cfg, cfg.Milter.LMTP, "lmtp", s.log)
		}},
	}
	for _, r := range roles {
		if r.addr == "" {
			continue
		}
		o := base
		r.apply(&o)
		ln, err := s.listen(r.name, r.addr)
		if err != nil {
			return err
		}
		if r.name == "lmtp" {
			sc.QuarantineHop = quarantineHop(r.addr, ln.Addr())
		}
		sc.SMTP = append(sc.SMTP, stack.Listener[smtp.Options]{Name: r.name, Listener: ln, Options: o})
	}
	return nil
}

// setupMetrics starts the metrics listener, then the HTTPS one.
func (s *server) setupMetrics() error {
	cfg := s.cfg
	if cfg.Listen.Metrics != "" {
		ln, err := s.listen("metrics", cfg.Listen.Metrics)
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: s.stats.mux(), ReadHeaderTimeout: 10 * time.Second}
		s.serve("metrics", func() error { return hs.Serve(ln) }, hs.Shutdown, http.ErrServerClosed)
	}
	// Last: the self-configuration answers name the listeners bound above.
	return s.setupHTTPS()
}

func dmarcMode(policy string) dnsauth.DMARCMode {
	switch policy {
	case "record":
		return dnsauth.DMARCRecordOnly
	case "junk":
		return dnsauth.DMARCJunkOnFail
	case "reject":
		return dnsauth.DMARCRejectOnFail
	}
	return dnsauth.DMARCFollowPolicy
}

// listen opens a listener ("unix:/path" for a Unix socket) and counts its
// connections for the metrics.
func (s *server) listen(name, addr string) (net.Listener, error) {
	if ln, ok := s.prebound[name]; ok {
		delete(s.prebound, name)
		return ln, nil
	}
	var ln net.Listener
	var err error
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		// Only LMTP listens on a socket: its permissions are LMTP's.
		mode, _ := s.cfg.Listen.LMTPSocketPerm()
		ln, err = unixsock.Listen(path, unixsock.Options{
			Mode: mode, Owner: s.cfg.Listen.LMTPSocketOwner, Group: s.cfg.Listen.LMTPSocketGroup})
	} else {
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("listen.%s: %w", name, err)
	}
	// Validate has checked them. With none, a PROXY header is still
	// refused: nobody may claim another client's address.
	trusted, _ := s.cfg.Listen.TrustedProxyPrefixes()
	ln = proxy.TrustedListener(ln, trusted, 0)
	s.listening = append(s.listening, [2]string{name, ln.Addr().String()})
	return s.stats.countConnections(name, ln), nil
}

// serve runs a server in the background; closed is the error its Serve
// returns after a Shutdown.
func (s *server) serve(name string, run func() error, shutdown func(context.Context) error, closed error) {
	go func() {
		if err := run(); err != nil && !errors.Is(err, closed) {
			s.serveErrs <- fmt.Errorf("%s: %w", name, err)
		}
	}()
	s.onStop(shutdown)
}

func (s *server) onStop(f func(context.Context) error) { s.shutdowns = append(s.shutdowns, f) }

// stop shuts everything down in reverse order of start: listeners first
// (letting transactions in flight finish), then the queue, the stores.
func (s *server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(s.shutdowns) - 1; i >= 0; i-- {
		if err := s.shutdowns[i](ctx); err != nil {
			s.log.Warn("shutdown", "err", err)
		}
	}
	s.shutdowns = nil
}

// reload is SIGHUP: the certificate is read again (it is also watched:
// a renewal is picked up within a second anyway), the directory cache is
// dropped, and DKIM keys made by "dkim keygen" since the start are used
// from now on.
func (s *server) reload(ctx context.Context) {
	s.log.Info("reloading on SIGHUP")
	s.dir.ClearCache()
	if s.certs == nil {
		// ACME: renewals are in use as soon as they are made.
	} else if err := s.certs.Reload(); err != nil {
		s.log.Error("certificate not reloaded, keeping the previous one", "err", err)
	}
	if s.cfg.DKIM.Sign {
		if err := s.signer.load(s.cfg.Path(s.cfg.DKIM.KeyDir, "dkim")); err != nil {
			s.log.Error("DKIM keys not reloaded", "err", err)
		}
	}
}

// quarantineHop is where messages a milter quarantines go: held in the
// queue (fullserver queue list, release, delete), delivered once
// released through this server's own LMTP listener, whose milters
// (milter.lmtp, none by default) do not quarantine them again. Without
// an LMTP listener they go to the recipients' Junk folders instead.
// The hop is the address the listener is bound to: listen.lmtp may name
// port 0, or every address.
func quarantineHop(addr string, bound net.Addr) string {
	if ta, ok := bound.(*net.TCPAddr); ok {
		ip := ta.IP
		if ip == nil || ip.IsUnspecified() {
			ip = net.IPv4(127, 0, 0, 1)
		}
		return "lmtp:" + net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
	}
	switch {
	case addr == "":
		return ""
	case strings.HasPrefix(addr, "/"):
		addr = "unix:" + addr
	case strings.HasPrefix(addr, ":"):
		addr = "127.0.0.1" + addr
	}
	return "lmtp:" + addr
}

// milters makes a listener's milter list (Validate has checked the
// addresses and the default action).
func milters(cfg *config.Config, addrs []string, listener string, log *slog.Logger) []mail.Filter {
	failure, _ := smtp.ParseMilterFailure(cfg.Milter.DefaultAction)
	var fs []mail.Filter
	for _, a := range addrs {
		fs = append(fs, &smtp.Milter{
			Address:        a,
			Failure:        failure,
			ConnectTimeout: cfg.Milter.ConnectTimeout.Duration,
			CommandTimeout: cfg.Milter.CommandTimeout.Duration,
			ContentTimeout: cfg.Milter.ContentTimeout.Duration,
			DaemonName:     listener,
			Log:            log,
		})
	}
	return fs
}

// dkimSigner signs with the DKIM keys last loaded from the key directory;
// mail from domains without keys goes out unsigned.
type dkimSigner struct {
	signer atomic.Pointer[dnsauth.Signer]
}

func (d *dkimSigner) load(dir string) error {
	keys, err := dnsauth.LoadDKIMKeys(dir)
	if err != nil {
		return fmt.Errorf("dkim: %w", err)
	}
	d.signer.Store(dnsauth.NewSigner(keys))
	return nil
}

// Sign implements smtp.Signer.
func (d *dkimSigner) Sign(ctx context.Context, env *mail.Envelope, msg mail.Body) ([]string, error) {
	return smtp.DKIMSigner{Signer: d.signer.Load()}.Sign(ctx, env, msg)
}

func (s *server) banner() {
	w := s.out
	fmt.Fprintf(w, "mailagent fullserver %s, data in %s\n", s.cfg.Hostname, s.cfg.DataDir)
	addrs := map[string]string{}
	for _, l := range s.listening {
		fmt.Fprintf(w, "  %-12s %s\n", l[0], l[1])
		addrs[l[0]] = l[1]
	}
	user := "USER@DOMAIN"
	if _, err := s.dir.LookupUser(context.Background(), "postmaster@localhost"); err == nil {
		user = "postmaster@localhost"
	}
	switch {
	case addrs["submission"] != "":
		fmt.Fprintf(w, "\nSend a first message:\n  swaks --server %s --tls --auth-user %s --auth-password PASSWORD \\\n"+
			"        --from %s --to %s\n", addrs["submission"], user, user, user)
	case addrs["submissions"] != "":
		fmt.Fprintf(w, "\nSend a first message:\n  swaks --server %s --tlsc --auth-user %s --auth-password PASSWORD \\\n"+
			"        --from %s --to %s\n", addrs["submissions"], user, user, user)
	}
	var read []string
	for _, l := range []struct{ name, how string }{
		{"imap", "IMAP %s (STARTTLS)"}, {"imaps", "IMAP %s (TLS)"}, {"pop3", "POP3 %s (STLS)"}, {"pop3s", "POP3 %s (TLS)"},
	} {
		if a := addrs[l.name]; a != "" {
			read = append(read, fmt.Sprintf(l.how, a))
		}
	}
	if len(read) > 0 {
		fmt.Fprintf(w, "Read it: %s; user %s.\n", strings.Join(read, ", "), user)
	}
	if s.cfg.TLS.CertFile == "" && !s.cfg.TLS.ACME {
		fmt.Fprintf(w, "The certificate is self-signed (%s): clients must be told to accept it.\n",
			filepath.Join(s.cfg.DataDir, "tls"))
	}
}

// relayTLSConfig trusts the certificates in caFile besides the system's,
// for a relay host whose certificate a private CA signed.
func relayTLSConfig(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("relay.ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("relay.ca_file: no PEM certificate in %s", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

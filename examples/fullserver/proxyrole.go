package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/internal/connlimit"
	"github.com/mailagent/mailagent/internal/proxy"
)

// startProxy is the proxy role's start: the directory and the login
// service, no mailboxes, no queue, no MX; the access and submission
// listeners and LMTP relay to the backends.
func (s *server) startProxy(ctx context.Context) error {
	cfg := s.cfg
	authn := &auth.Authenticator{Users: s.dir, Logger: s.log}
	s.auth = authn
	s.stats.watchAuth(authn)
	s.conns = connlimit.New(cfg.Limits.MaxConnections, cfg.Limits.MaxConnectionsPerIP)
	opts := proxy.Options{
		Directory: s.dir,
		Auth:      authn,
		Backends:  cfg.Proxy.Backends,
		Ports: proxy.Ports{IMAP: cfg.Proxy.IMAPPort, POP3: cfg.Proxy.POP3Port,
			Submission: cfg.Proxy.SubmissionPort, LMTP: cfg.Proxy.LMTPPort},
		TLSConfig:         s.tlsCfg,
		AllowInsecureAuth: cfg.TLS.AllowInsecureAuth,
		DialTimeout:       cfg.Proxy.ConnectTimeout.Duration,
		LoginTimeout:      cfg.Limits.LoginTimeout.Duration,
		MaxAuthFailures:   cfg.Limits.MaxAuthFailures,
		Hostname:          cfg.Hostname,
		MaxMessageBytes:   cfg.Limits.MaxMessageBytes,
		MaxRecipients:     cfg.Limits.MaxRecipients,
		Logger:            s.log,
	}
	// Validate has checked them.
	opts.LMTPNetworks, _ = cfg.Listen.LMTPPrefixes()
	switch cfg.Proxy.BackendTLS {
	case "implicit":
		opts.BackendTLS = proxy.ImplicitTLS
	case "none":
		opts.BackendTLS = proxy.NoTLS
	}
	btls := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.Proxy.ServerName}
	if cfg.Proxy.CAFile != "" {
		pem, err := os.ReadFile(cfg.Proxy.CAFile)
		if err != nil {
			return fmt.Errorf("proxy.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("proxy.ca_file: no PEM certificate in %s", cfg.Proxy.CAFile)
		}
		btls.RootCAs = pool
	}
	opts.BackendTLSConfig = btls
	if a := cfg.Proxy.SourceAddress; a != "" {
		opts.SourceAddr = net.ParseIP(a)
	}
	p, err := proxy.New(opts)
	if err != nil {
		return err
	}
	s.proxy = p
	if err := s.startControl(); err != nil {
		return err
	}
	for _, l := range []struct {
		name, addr string
		serve      func(net.Listener) error
	}{
		{"imap", cfg.Listen.IMAP, func(ln net.Listener) error { return p.ServeIMAP(ln, false) }},
		{"imaps", cfg.Listen.IMAPS, func(ln net.Listener) error { return p.ServeIMAP(ln, true) }},
		{"pop3", cfg.Listen.POP3, func(ln net.Listener) error { return p.ServePOP3(ln, false) }},
		{"pop3s", cfg.Listen.POP3S, func(ln net.Listener) error { return p.ServePOP3(ln, true) }},
		{"submission", cfg.Listen.Submission, func(ln net.Listener) error { return p.ServeSubmission(ln, false) }},
		{"submissions", cfg.Listen.Submissions, func(ln net.Listener) error { return p.ServeSubmission(ln, true) }},
		{"lmtp", cfg.Listen.LMTP, p.ServeLMTP},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := s.listen(l.name, l.addr)
		if err != nil {
			return err
		}
		// Counted against limits.max_connections like every listener.
		ln = connlimit.Listener(ln, s.conns)
		s.serve(l.name, func() error { return l.serve(ln) }, func(context.Context) error { return nil }, proxy.ErrClosed)
	}
	s.onStop(p.Shutdown)
	if cfg.Listen.Metrics != "" {
		ln, err := s.listen("metrics", cfg.Listen.Metrics)
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: s.stats.mux(), ReadHeaderTimeout: 10 * time.Second}
		s.serve("metrics", func() error { return hs.Serve(ln) }, hs.Shutdown, http.ErrServerClosed)
	}
	return nil
}

// handleKick ends a moved user's open sessions on a proxy (fullserver
// user move); on a backend there are none to end.
func (s *server) handleKick(w http.ResponseWriter, r *http.Request) {
	var args []string
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<10)).Decode(&args); err != nil || len(args) != 1 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.dir.ClearCache()
	n := 0
	if s.proxy != nil {
		n = s.proxy.Kick(args[0])
	}
	fmt.Fprintf(w, "%d\n", n)
}

// moved tells the running server, if any, that user's mailbox moved:
// it drops its directory cache and, as a proxy, ends the user's
// sessions. It returns how many it ended.
func (e *env) moved(ctx context.Context, user string) (string, error) {
	cfg, err := e.config()
	if err != nil {
		return "", err
	}
	out, err := controlPost(ctx, controlSocket(cfg.DataDir), "/kick", []string{user})
	var remote *remoteError
	if err != nil && !errors.As(err, &remote) {
		return "0\n", nil // no server listens
	}
	return out, err
}

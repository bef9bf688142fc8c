package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mailagent/mailagent/internal/connlimit"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Certificates from an ACME CA (Let's Encrypt by default) with
// tls.acme = true: autocert obtains a certificate for each name a client
// asks for that is one of this server's (the hostname, tls.acme_hosts,
// and autoconfig./autodiscover. of the local domains), answers the CA's
// TLS-ALPN-01 challenge on listen.https (port 443) or its HTTP-01
// challenge on listen.http (port 80), keeps certificates and the account
// key in DATA/acme, and renews each a third of its lifetime before it
// expires. Every listener asks for the certificate at each handshake, so
// a renewed one is in use at once, without a restart.

// acmeCerts is the certificate source of every listener under ACME.
type acmeCerts struct {
	m        *autocert.Manager
	hostname string
}

// GetCertificate gives clients that send no usable server name (an
// address, none at all: many MTAs) the hostname's certificate.
func (a *acmeCerts) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.Trim(hello.ServerName, ".")
	if name == "" || net.ParseIP(name) != nil || !strings.Contains(name, ".") {
		h := *hello
		h.ServerName = a.hostname
		hello = &h
	}
	return a.m.GetCertificate(hello)
}

// setupACME builds the certificate manager from the configuration.
func (s *server) setupACME() (*acmeCerts, error) {
	cfg := s.cfg
	client := &acme.Client{DirectoryURL: cfg.TLS.ACMEDirectory, UserAgent: "mailagent-fullserver"}
	if cfg.TLS.ACMECAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.ACMECAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.acme_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.acme_ca_file: no PEM certificate in %s", cfg.TLS.ACMECAFile)
		}
		client.HTTPClient = &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			Proxy:           http.ProxyFromEnvironment,
		}}
	}
	hostname := strings.ToLower(cfg.Hostname)
	extra := make([]string, len(cfg.TLS.ACMEHosts))
	for i, h := range cfg.TLS.ACMEHosts {
		extra[i] = strings.ToLower(strings.TrimSuffix(h, "."))
	}
	m := &autocert.Manager{
		Prompt: autocert.AcceptTOS,
		Cache:  autocert.DirCache(filepath.Join(cfg.DataDir, "acme")),
		Email:  cfg.TLS.ACMEEmail,
		Client: client,
		// Only our own names: anyone can send any SNI, and each name
		// asked for would otherwise cost an order at the CA.
		HostPolicy: func(ctx context.Context, host string) error {
			// HTTP-01 asks with the request's Host, port included
			// when the CA was pointed at another port than 80.
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			host = strings.ToLower(strings.TrimSuffix(host, "."))
			if host == hostname || slices.Contains(extra, host) {
				return nil
			}
			for _, p := range []string{"autoconfig.", "autodiscover."} {
				if d, ok := strings.CutPrefix(host, p); ok {
					if local, err := s.dir.IsLocalDomain(ctx, d); err == nil && local {
						return nil
					}
				}
			}
			return fmt.Errorf("acme: %q is not a name of this server", host)
		},
	}
	return &acmeCerts{m: m, hostname: hostname}, nil
}

// setupHTTP serves listen.http: ACME's HTTP-01 challenges, and a
// redirect to HTTPS for everything else.
func (s *server) setupHTTP() error {
	if s.cfg.Listen.HTTP == "" {
		return nil
	}
	ln, err := s.listen("http", s.cfg.Listen.HTTP)
	if err != nil {
		return err
	}
	// Counted against limits.max_connections with every other listener.
	ln = connlimit.Listener(ln, s.conns)
	var h http.Handler = http.HandlerFunc(redirectHTTPS)
	if s.acme != nil {
		h = s.acme.m.HTTPHandler(h)
	}
	hs := newHTTPServer(h, s.log)
	s.serve("http", func() error { return hs.Serve(ln) }, hs.Shutdown, http.ErrServerClosed)
	return nil
}

// redirectHTTPS sends a plain-HTTP client to the same URL over HTTPS.
func redirectHTTPS(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "" || strings.ContainsAny(host, "/\\@ ") {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusMovedPermanently)
}

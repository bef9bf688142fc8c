package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/mailagent/mailagent/examples/fullserver/config"
)

// preflight checks what a start would otherwise find only after it had
// created the data directory and the database: every TCP listen address
// is one a listener can be opened on, and the configured certificate and
// key can be read and form a pair. Each error names its config key.
func preflight(cfg *config.Config) error {
	l := cfg.Listen
	for _, b := range []struct{ key, addr string }{
		{"mx", l.MX}, {"submission", l.Submission}, {"submissions", l.Submissions}, {"lmtp", l.LMTP},
		{"imap", l.IMAP}, {"imaps", l.IMAPS}, {"pop3", l.POP3}, {"pop3s", l.POP3S},
		{"metrics", l.Metrics}, {"https", l.HTTPS}, {"http", l.HTTP}, {"managesieve", l.ManageSieve},
	} {
		if b.addr == "" || strings.HasPrefix(b.addr, "unix:") {
			continue
		}
		if err := checkListenAddr(b.addr); err != nil {
			return fmt.Errorf("listen.%s = %q: %v", b.key, b.addr, err)
		}
	}
	if cfg.TLS.ACME || cfg.TLS.CertFile == "" {
		return nil
	}
	for _, f := range []struct{ key, path string }{{"tls.cert_file", cfg.TLS.CertFile}, {"tls.key_file", cfg.TLS.KeyFile}} {
		if err := readable(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
	}
	if _, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
		return fmt.Errorf("tls.cert_file %s and tls.key_file %s: %v", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
	}
	return nil
}

// checkListenAddr reports an address net.Listen would refuse for its form:
// no port, a port that is not a number in range, a host that is not an IP
// address or a name that resolves.
func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT")
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q is not a port number", port)
	}
	if host == "" || net.ParseIP(host) != nil {
		return nil
	}
	if _, err := net.ResolveTCPAddr("tcp", addr); err != nil {
		return fmt.Errorf("host %q does not resolve", host)
	}
	return nil
}

// readable opens path to read, with an error that names the path and
// says "permission denied" or "does not exist" in words.
func readable(path string) error {
	f, err := os.Open(path)
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%s: permission denied", path)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s does not exist", path)
	case err != nil:
		return err
	}
	return f.Close()
}

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop"
)

// freePort returns a loopback port nobody listens on now (pebble's
// challenge ports must be known before the server starts).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// selfSignedPEM writes a certificate for 127.0.0.1 and localhost, and
// its key, for pebble's own HTTPS.
func selfSignedPEM(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble API"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "pebble.crt"), filepath.Join(dir, "pebble.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// startProgram runs a helper program until the test ends.
func startProgram(t *testing.T, env []string, name string, args ...string) *strings.Builder {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", filepath.Base(name), logs.String())
		}
	})
	return &logs
}

// pebbleCA is a running pebble with its DNS (pebble-challtestsrv, every
// name at 127.0.0.1).
type pebbleCA struct {
	directory string         // ACME directory URL
	apiCA     string         // PEM file trusted for pebble's HTTPS
	roots     *x509.CertPool // pebble's issuing root, from its management API
}

// startPebble starts pebble validating TLS-ALPN-01 on tlsPort and
// HTTP-01 on httpPort, issuing certificates valid for validity.
func startPebble(t *testing.T, tlsPort, httpPort int, validity time.Duration) *pebbleCA {
	t.Helper()
	pebble := interop.Program(t, "pebble")
	chall := interop.Program(t, "pebble-challtestsrv")
	dir := t.TempDir()
	certFile, keyFile := selfSignedPEM(t, dir)
	dnsPort, apiPort, mgmtPort, challMgmt := freePort(t), freePort(t), freePort(t), freePort(t)
	startProgram(t, nil, chall, "-dns01", fmt.Sprintf("127.0.0.1:%d", dnsPort), "-http01", "", "-https01", "",
		"-tlsalpn01", "", "-management", fmt.Sprintf("127.0.0.1:%d", challMgmt), "-defaultIPv6", "")
	conf, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":             fmt.Sprintf("127.0.0.1:%d", apiPort),
		"managementListenAddress":   fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate":               certFile,
		"privateKey":                keyFile,
		"httpPort":                  httpPort,
		"tlsPort":                   tlsPort,
		"certificateValidityPeriod": int(validity.Seconds()),
	}})
	confFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	startProgram(t, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		pebble, "-config", confFile, "-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort))

	apiPool := x509.NewCertPool()
	pemData, _ := os.ReadFile(certFile)
	apiPool.AppendCertsFromPEM(pemData)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: apiPool}}}
	// pebble is another process: wait for it to answer.
	var root []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
		if err == nil {
			root, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(root) {
		t.Fatalf("pebble root: %q", root)
	}
	return &pebbleCA{directory: fmt.Sprintf("https://127.0.0.1:%d/dir", apiPort), apiCA: certFile, roots: roots}
}

// tlsLeaf makes a TLS handshake to addr for name, trusting only roots,
// and returns the server's certificate.
func tlsLeaf(addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 90 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: name})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// acmeConfig writes the test configuration with tls.acme on against
// pebble, and listen lines added.
func acmeConfig(t *testing.T, dir string, ca *pebbleCA, listen string) string {
	t.Helper()
	cfg := qaConfig(t, dir, fmt.Sprintf(`[tls]
acme = true
acme_email = "postmaster@qa.test"
acme_directory = %q
acme_ca_file = %q
`, ca.directory, ca.apiCA))
	text, _ := os.ReadFile(cfg)
	text = []byte(strings.Replace(string(text), "[listen]\n", "[listen]\n"+listen+"\n", 1))
	if err := os.WriteFile(cfg, text, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Without an HTTPS listener the CA validates over listen.http
// (HTTP-01), which sends every other request to HTTPS.
func TestACMEHTTP01WithPebble(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	httpPort := freePort(t)
	ca := startPebble(t, freePort(t), httpPort, time.Hour)
	s := qaStart(t, bin, acmeConfig(t, t.TempDir(), ca, fmt.Sprintf("http = \"127.0.0.1:%d\"", httpPort)))
	c, err := tlsLeaf(s.addrs["submissions"], "mail.qa.test", ca.roots)
	if err != nil || c.VerifyHostname("mail.qa.test") != nil {
		t.Fatalf("submissions with pebble's root: %v", err)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/mail/config-v1.1.xml?x=1", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || loc != "https://127.0.0.1/mail/config-v1.1.xml?x=1" {
		t.Errorf("plain HTTP: %d to %q", resp.StatusCode, loc)
	}
}

// With tls.acme, the server gets its certificate from pebble (TLS-ALPN-01
// on listen.https), an IMAPS client trusting only pebble's root accepts
// it, the autoconfig name of a local domain gets one too, and a
// certificate about to expire is replaced on every listener without a
// restart.
func TestACMEWithPebble(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	httpsPort := freePort(t)
	ca := startPebble(t, httpsPort, freePort(t), 45*time.Second)
	dir := t.TempDir()
	s := qaStart(t, bin, acmeConfig(t, dir, ca, fmt.Sprintf("https = \"127.0.0.1:%d\"", httpsPort)))

	first, err := tlsLeaf(s.addrs["imaps"], "mail.qa.test", ca.roots)
	if err != nil {
		t.Fatalf("IMAPS with pebble's root: %v\n%s", err, s.logs)
	}
	if first.VerifyHostname("mail.qa.test") != nil || first.NotAfter.Sub(first.NotBefore) > time.Minute {
		t.Fatalf("first certificate: %v, valid %s to %s", first.DNSNames, first.NotBefore, first.NotAfter)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "acme", "mail.qa.test")); err != nil {
		t.Errorf("certificate not kept in the data directory: %v", err)
	}
	// The same certificate on the other listeners (one cache, one renewal).
	for _, l := range []string{"submissions", "pop3s", "https"} {
		c, err := tlsLeaf(s.addrs[l], "mail.qa.test", ca.roots)
		if err != nil || c.SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Errorf("%s: %v, serial %v want %v", l, err, c.SerialNumber, first.SerialNumber)
		}
	}
	s.admin(t, "", "domain", "add", "b.test")
	if c, err := tlsLeaf(s.addrs["https"], "autoconfig.b.test", ca.roots); err != nil || c.VerifyHostname("autoconfig.b.test") != nil {
		t.Errorf("autoconfig.b.test: %v", err)
	}
	if _, err := tlsLeaf(s.addrs["https"], "autoconfig.other.test", ca.roots); err == nil {
		t.Error("a certificate for a domain not served here")
	}

	// Renewal: a third of the 45 s lifetime before expiry. The renewed
	// certificate is expected within the first one's lifetime.
	deadline := first.NotAfter.Add(10 * time.Second)
	for {
		c, err := tlsLeaf(s.addrs["imaps"], "mail.qa.test", ca.roots)
		if err == nil && c.SerialNumber.Cmp(first.SerialNumber) != 0 {
			if c.NotAfter.Before(first.NotAfter) || c.VerifyHostname("mail.qa.test") != nil {
				t.Fatalf("renewed certificate: %v until %s", c.DNSNames, c.NotAfter)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no renewed certificate by %s (last: %v)", deadline, err)
		}
		time.Sleep(time.Second)
	}
}

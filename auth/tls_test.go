package auth

import (
	"bytes"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestSelfSignedPersistsAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	certFile, keyFile, err := SelfSigned(dir, "mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key mode %v, want 0600", perm)
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Leaf.VerifyHostname("mail.example.org"); err != nil {
		t.Error(err)
	}
	if d := time.Until(c.Leaf.NotAfter); d < 360*24*time.Hour {
		t.Errorf("certificate valid for only %v", d)
	}
	before, _ := os.ReadFile(keyFile)

	// A second run reuses the pair.
	c2, k2, err := SelfSigned(dir, "mail.example.org")
	if err != nil || c2 != certFile || k2 != keyFile {
		t.Fatalf("second SelfSigned = %q, %q, %v", c2, k2, err)
	}
	if after, _ := os.ReadFile(keyFile); !bytes.Equal(before, after) {
		t.Error("key regenerated although the pair was usable")
	}

	// A damaged pair is replaced.
	if err := os.WriteFile(certFile, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := SelfSigned(dir, "mail.example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Errorf("after regeneration: %v", err)
	}
	if after, _ := os.ReadFile(keyFile); bytes.Equal(before, after) {
		t.Error("damaged pair kept its old key")
	}
	// No temporary files are left behind.
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("directory holds %d entries, want 2", len(ents))
	}
}

func TestSelfSignedRefusesPathNames(t *testing.T) {
	for _, h := range []string{"", "..", "../evil", "a/b"} {
		if _, _, err := SelfSigned(t.TempDir(), h); err == nil {
			t.Errorf("SelfSigned(%q) accepted", h)
		}
	}
}

func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certA, keyA, err := SelfSigned(filepath.Join(dir, "a"), "a.example.org")
	if err != nil {
		t.Fatal(err)
	}
	certB, keyB, err := SelfSigned(filepath.Join(dir, "b"), "b.example.org")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	install := func(cert, key string, mtime time.Time) {
		t.Helper()
		for _, p := range [][2]string{{cert, certFile}, {key, keyFile}} {
			b, err := os.ReadFile(p[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p[1], b, 0o600); err != nil {
				t.Fatal(err)
			}
			// Set mtimes explicitly: two writes within the file
			// system's timestamp granularity must still differ.
			if err := os.Chtimes(p[1], mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	install(certA, keyA, base)
	clock := newFakeClock()
	r, err := NewCertReloader(certFile, keyFile, CertReloaderOptions{now: clock.Now, CheckInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	name := func() string {
		t.Helper()
		c, err := r.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.DNSNames[0]
	}
	if n := name(); n != "a.example.org" {
		t.Fatalf("serving %s", n)
	}
	install(certB, keyB, base.Add(time.Minute))
	if n := name(); n != "a.example.org" {
		t.Errorf("files looked at again within CheckInterval: serving %s", n)
	}
	clock.Advance(time.Second)
	if n := name(); n != "b.example.org" {
		t.Errorf("renewed certificate not picked up: serving %s", n)
	}
	// A renewal caught half-written keeps the previous certificate.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERT"), 0o600); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if n := name(); n != "b.example.org" {
		t.Errorf("after a broken write: serving %s", n)
	}
	// Reload reads the files even when their stamps did not change, and
	// keeps the previous certificate when they are broken.
	if err := r.Reload(); err == nil {
		t.Error("Reload of a broken certificate returned nil")
	}
	if n := name(); n != "b.example.org" {
		t.Errorf("after a failed Reload: serving %s", n)
	}
	install(certA, keyA, base.Add(time.Minute))
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := name(); n != "a.example.org" {
		t.Errorf("after Reload with unchanged stamps: serving %s", n)
	}
	// A mismatched pair is refused at start.
	if _, err := NewCertReloader(certA, keyB, CertReloaderOptions{}); err == nil {
		t.Error("mismatched certificate and key accepted")
	}
}

// handshakeWith runs a TLS handshake between a server of profile p, with
// a self-signed ECDSA certificate, and a client configured by client.
func handshakeWith(t *testing.T, p TLSProfile, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	certPEM, keyPEM, err := newSelfSigned("mail.example.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	sc := p.Config(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	cc, sconn := net.Pipe()
	defer cc.Close()
	defer sconn.Close()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(sconn, sc)
		done <- s.Handshake()
		sconn.Close()
	}()
	c := tls.Client(cc, client)
	err = c.Handshake()
	cc.Close()
	serr := <-done
	if err == nil {
		err = serr
	}
	return c.ConnectionState(), err
}

func TestTLSProfiles(t *testing.T) {
	base := func(f func(c *tls.Config)) *tls.Config {
		c := &tls.Config{InsecureSkipVerify: true}
		f(c)
		return c
	}
	tls12 := func(suites ...uint16) *tls.Config {
		return base(func(c *tls.Config) { c.MaxVersion, c.CipherSuites = tls.VersionTLS12, suites })
	}
	clients := map[string]*tls.Config{
		"ECDHE-ECDSA-AES128-SHA":        tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA),
		"ECDHE-ECDSA-AES256-SHA":        tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA),
		"ECDHE-ECDSA-AES128-GCM-SHA256": tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
		"ECDHE-ECDSA-AES256-GCM-SHA384": tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
		"ECDHE-ECDSA-CHACHA20-POLY1305": tls12(tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
		"TLS 1.0":                       base(func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS10 }),
		"TLS 1.1":                       base(func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS11, tls.VersionTLS11 }),
		"TLS 1.2 P-521 only": base(func(c *tls.Config) {
			c.MaxVersion, c.CurvePreferences = tls.VersionTLS12, []tls.CurveID{tls.CurveP521}
		}),
		"TLS 1.2 P-384 only": base(func(c *tls.Config) {
			c.MaxVersion, c.CurvePreferences = tls.VersionTLS12, []tls.CurveID{tls.CurveP384}
		}),
		"TLS 1.3": base(func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }),
	}
	want := map[TLSProfile][]string{
		TLSModern: {"TLS 1.3"},
		TLSIntermediate: {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
			"ECDHE-ECDSA-CHACHA20-POLY1305", "TLS 1.2 P-384 only", "TLS 1.3"},
		TLSOld: {"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-GCM-SHA256",
			"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "TLS 1.0", "TLS 1.1",
			"TLS 1.2 P-521 only", "TLS 1.2 P-384 only", "TLS 1.3"},
	}
	for p, accepted := range want {
		for name, c := range clients {
			_, err := handshakeWith(t, p, c)
			if ok := slices.Contains(accepted, name); (err == nil) != ok {
				t.Errorf("profile %s, client %s: handshake error %v, want accepted %v", p, name, err, ok)
			}
		}
	}
	if p, err := ParseTLSProfile("intermediate"); err != nil || p != TLSIntermediate {
		t.Errorf("ParseTLSProfile(intermediate) = %q, %v", p, err)
	}
	if _, err := ParseTLSProfile("Intermediate "); err == nil {
		t.Error("ParseTLSProfile accepted a misspelt name")
	}
	if c := TLSConfig(nil); c.MinVersion != tls.VersionTLS12 || len(c.CipherSuites) != 6 {
		t.Errorf("TLSConfig is not the intermediate profile: %+v", c)
	}
}

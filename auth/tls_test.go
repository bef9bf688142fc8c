package auth

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
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
	r, err := NewCertReloader(certFile, keyFile, CertReloaderOptions{Now: clock.Now, CheckInterval: time.Second})
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

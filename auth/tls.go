package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mailagent/mailagent/internal/safeio"
)

// TLSProfile is a server TLS policy, named after Mozilla's server side
// TLS recommendations (https://wiki.mozilla.org/Security/Server_Side_TLS).
type TLSProfile string

const (
	// TLSModern accepts TLS 1.3 only.
	TLSModern TLSProfile = "modern"
	// TLSIntermediate is Mozilla's intermediate profile, for listeners
	// whose clients are mail programs (submission, IMAP, POP3 and their
	// implicit-TLS ports): TLS 1.2 and 1.3; in TLS 1.2 only ECDHE key
	// exchange with AEAD ciphers (AES-128/256-GCM, ChaCha20-Poly1305);
	// the groups X25519 (also in the post-quantum hybrid X25519MLKEM768
	// for TLS 1.3), P-256 and P-384.
	TLSIntermediate TLSProfile = "intermediate"
	// TLSOld is for the MX (port 25): TLS 1.0 and later with CBC ciphers
	// and RSA key exchange allowed (no 3DES, no RC4). Sending MTAs use
	// STARTTLS opportunistically and fall back to cleartext when the
	// handshake fails (RFC 7435), so refusing an old peer does not
	// protect its mail: it sends it unencrypted.
	TLSOld TLSProfile = "old"
)

// ParseTLSProfile returns the profile named s ("modern", "intermediate"
// or "old").
func ParseTLSProfile(s string) (TLSProfile, error) {
	switch p := TLSProfile(s); p {
	case TLSModern, TLSIntermediate, TLSOld:
		return p, nil
	}
	return "", fmt.Errorf("auth: TLS profile %q is not modern, intermediate or old", s)
}

// intermediateSuites are the TLS 1.2 suites of Mozilla's intermediate
// profile, in its order; TLS 1.3's suites are all AEAD and not
// configurable.
var intermediateSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Config returns a server *tls.Config following the profile, with its
// certificate from getCertificate (such as
// (*CertReloader).GetCertificate). An unknown profile is taken as
// TLSIntermediate.
func (p TLSProfile) Config(getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	c := &tls.Config{GetCertificate: getCertificate}
	switch p {
	case TLSModern:
		c.MinVersion = tls.VersionTLS13
	case TLSOld:
		c.MinVersion = tls.VersionTLS10
		// Every suite Go does not list as insecure: with CBC and RSA
		// key exchange, which Go no longer enables by default.
		for _, cs := range tls.CipherSuites() {
			c.CipherSuites = append(c.CipherSuites, cs.ID)
		}
	default:
		c.MinVersion = tls.VersionTLS12
		c.CipherSuites = intermediateSuites
		c.CurvePreferences = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}
	}
	return c
}

// TLSConfig returns TLSIntermediate.Config(getCertificate): the policy
// of every listener whose clients are mail programs.
func TLSConfig(getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return TLSIntermediate.Config(getCertificate)
}

// CertReloader serves a certificate from a PEM certificate (chain) file
// and key file and reloads them when either changes, so a renewed
// certificate is used without a restart. Changes are noticed by the files'
// modification time and size, looked at most once per CheckInterval.
type CertReloader struct {
	certFile, keyFile string
	interval          time.Duration
	now               func() time.Time
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
}

// CertReloaderOptions tunes a CertReloader. Zero fields take defaults.
type CertReloaderOptions struct {
	// CheckInterval is the least time between two looks at the files
	// (1 s).
	CheckInterval time.Duration
	// Logger receives reload failures; nil discards.
	Logger *slog.Logger

	// now is the clock (time.Now); the package's tests set it.
	now func() time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// NewCertReloader loads certFile and keyFile and returns a CertReloader
// serving them, or the loading error.
func NewCertReloader(certFile, keyFile string, opts CertReloaderOptions) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile, interval: opts.CheckInterval, now: opts.now, log: opts.Logger}
	if r.interval <= 0 {
		r.interval = time.Second
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	stamp, err := r.stamps()
	if err != nil {
		return nil, err
	}
	if err := r.load(stamp); err != nil {
		return nil, err
	}
	r.checked = r.now()
	return r, nil
}

func (r *CertReloader) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, name := range [2]string{r.certFile, r.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return s, fmt.Errorf("auth: %w", err)
		}
		s[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return s, nil
}

func (r *CertReloader) load(stamp [2]fileStamp) error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("auth: loading %s and %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &c, stamp
	return nil
}

// GetCertificate returns the current certificate, reloading it first if
// the files changed. A reload that fails (a renewal caught half-written,
// a key that does not match) keeps the previous certificate, logs, and is
// retried at the next check. It suits tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < r.interval {
		return r.cert, nil
	}
	r.checked = now
	stamp, err := r.stamps()
	if err != nil {
		r.log.Warn("certificate check failed, keeping the loaded one", "err", err)
		return r.cert, nil
	}
	if stamp != r.stamp {
		if err := r.load(stamp); err != nil {
			r.log.Warn("certificate reload failed, keeping the loaded one", "err", err)
		}
	}
	return r.cert, nil
}

// Reload reads the files now, whatever their time stamps say (for SIGHUP:
// a renewal that kept the size and the mtime is still picked up). On
// failure the previous certificate stays in use and the error is returned.
func (r *CertReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = r.now()
	stamp, err := r.stamps()
	if err != nil {
		return err
	}
	return r.load(stamp)
}

// Self-signed certificates live this long and are replaced this long
// before they expire.
const (
	selfSignedValidity = 365 * 24 * time.Hour
	selfSignedRenew    = 30 * 24 * time.Hour
)

// SelfSigned returns the paths of a self-signed certificate for hostname
// and its key in dir ("<hostname>.crt", "<hostname>.key"), generating them
// when missing, unreadable, issued for another name or within 30 days of
// expiry, and reusing them otherwise so that clients which pinned the
// certificate keep trusting it across restarts. The key is written with
// mode 0600; both files are written to a temporary name and renamed, so a
// crash never leaves half a key.
func SelfSigned(dir, hostname string) (certFile, keyFile string, err error) {
	if hostname == "" || filepath.Base(hostname) != hostname || hostname == "." || hostname == ".." {
		return "", "", fmt.Errorf("auth: invalid host name %q", hostname)
	}
	certFile = filepath.Join(dir, hostname+".crt")
	keyFile = filepath.Join(dir, hostname+".key")
	if usableSelfSigned(certFile, keyFile, hostname, time.Now()) {
		return certFile, keyFile, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("auth: %w", err)
	}
	certPEM, keyPEM, err := newSelfSigned(hostname, time.Now())
	if err != nil {
		return "", "", err
	}
	if err := safeio.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("auth: %w", err)
	}
	if err := safeio.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", fmt.Errorf("auth: %w", err)
	}
	return certFile, keyFile, nil
}

// usableSelfSigned reports whether the pair on disk can be reused.
func usableSelfSigned(certFile, keyFile, hostname string, now time.Time) bool {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil || c.Leaf == nil {
		return false
	}
	return c.Leaf.VerifyHostname(hostname) == nil && now.Add(selfSignedRenew).Before(c.Leaf.NotAfter)
}

// newSelfSigned makes an ECDSA P-256 certificate for hostname, usable for
// TLS server authentication.
func newSelfSigned(hostname string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("auth: generating serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname},
		DNSNames:              []string{hostname},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: creating certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: encoding key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

package dnsauth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mailagent/mailagent/internal/safeio"
)

// DKIM key algorithms.
const (
	DKIMAlgoRSA     = "rsa"     // RSA-2048 with SHA-256, what every verifier accepts
	DKIMAlgoEd25519 = "ed25519" // RFC 8463; sign with RSA too, not all verifiers know it
)

// DKIMRSABits is the size of generated RSA keys (RFC 8301 section 3.2
// asks for at least 2048 bits when signing).
const DKIMRSABits = 2048

// DKIMKey is a signing key for one domain and selector.
type DKIMKey struct {
	Domain   string        // d=, lower case
	Selector string        // s=
	Signer   crypto.Signer // *rsa.PrivateKey or ed25519.PrivateKey
}

// Algorithm returns DKIMAlgoRSA or DKIMAlgoEd25519 ("" for another key
// type).
func (k *DKIMKey) Algorithm() string {
	switch k.Signer.Public().(type) {
	case *rsa.PublicKey:
		return DKIMAlgoRSA
	case ed25519.PublicKey:
		return DKIMAlgoEd25519
	}
	return ""
}

// publicKeyBytes is the p= value before base64: SubjectPublicKeyInfo for
// RSA (RFC 6376 section 3.6.1), the raw 32 bytes for Ed25519 (RFC 8463
// section 4).
func (k *DKIMKey) publicKeyBytes() ([]byte, error) {
	switch pub := k.Signer.Public().(type) {
	case *rsa.PublicKey:
		return x509.MarshalPKIXPublicKey(pub)
	case ed25519.PublicKey:
		return []byte(pub), nil
	}
	return nil, fmt.Errorf("dkim: unsupported key type %T", k.Signer.Public())
}

// Record returns the TXT record that publishes the key:
// selector._domainkey.domain with v=DKIM1, k= and p=.
func (k *DKIMKey) Record() (Record, error) {
	p, err := k.publicKeyBytes()
	if err != nil {
		return Record{}, err
	}
	return Record{
		Name:  k.Selector + "._domainkey." + k.Domain,
		Type:  "TXT",
		Value: fmt.Sprintf("v=DKIM1; k=%s; p=%s", k.Algorithm(), base64.StdEncoding.EncodeToString(p)),
	}, nil
}

// GenerateDKIMKey creates a new key: algo is DKIMAlgoRSA (2048 bits, also
// when algo is "") or DKIMAlgoEd25519.
func GenerateDKIMKey(domain, selector, algo string) (*DKIMKey, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if err := checkKeyName(domain, selector); err != nil {
		return nil, err
	}
	k := &DKIMKey{Domain: domain, Selector: selector}
	var err error
	switch algo {
	case DKIMAlgoRSA, "":
		k.Signer, err = rsa.GenerateKey(rand.Reader, DKIMRSABits)
	case DKIMAlgoEd25519:
		_, k.Signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("dkim: unknown algorithm %q (want rsa or ed25519)", algo)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// checkKeyName accepts domain and selector only when they are DNS names
// made of letters, digits, hyphens and dots, which also keeps the key's
// file inside the key directory.
func checkKeyName(domain, selector string) error {
	for _, n := range []string{domain, selector} {
		if n == "" || len(n) > maxDomainLen || strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".") || strings.Contains(n, "..") {
			return fmt.Errorf("dkim: invalid name %q", n)
		}
		for i := 0; i < len(n); i++ {
			if c := n[i]; !isAlpha(c) && !isDigit(c) && c != '-' && c != '.' && c != '_' {
				return fmt.Errorf("dkim: invalid name %q", n)
			}
		}
	}
	return nil
}

// dkimKeyPath is where a key lives: dir/domain/selector.pem.
func dkimKeyPath(dir, domain, selector string) string {
	return filepath.Join(dir, domain, selector+".pem")
}

// ErrDKIMKeyExists is returned by SaveDKIMKey rather than overwrite a key:
// its public half may be published, and mail signed with it in flight.
var ErrDKIMKeyExists = errors.New("dkim: a key with this selector already exists")

// SaveDKIMKey writes k as a PKCS #8 PEM file dir/domain/selector.pem,
// readable by the owner only (0600, directories 0700), durably (written to
// a temporary file, synced, renamed). It never replaces an existing key:
// rotation is a new selector, published before it signs alongside the
// old, which is removed once the old record can go.
func SaveDKIMKey(dir string, k *DKIMKey) (string, error) {
	if err := checkKeyName(k.Domain, k.Selector); err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Signer)
	if err != nil {
		return "", err
	}
	path := dkimKeyPath(dir, k.Domain, k.Selector)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	// NoReplace, so that a key created concurrently under the same
	// selector is never replaced.
	pemData := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := safeio.WriteFile(path, pemData, 0o600, safeio.NoReplace()); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("%w: %s", ErrDKIMKeyExists, path)
		}
		return "", err
	}
	return path, nil
}

// ParseDKIMPrivateKey parses a PEM private key: PKCS #8 (RSA or Ed25519),
// or PKCS #1 "RSA PRIVATE KEY" as opendkim-genkey and dknewkey write.
func ParseDKIMPrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("dkim: no PEM block in key file")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("dkim: unsupported key type %T", k)
	}
	return nil, fmt.Errorf("dkim: unsupported PEM block %q", block.Type)
}

// LoadDKIMKeys reads every key under dir (dir/domain/selector.pem), as
// SaveDKIMKey writes them. A missing dir holds no keys. Keys readable by
// group or others are refused: a leaked key lets anyone sign as the domain.
func LoadDKIMKeys(dir string) ([]*DKIMKey, error) {
	domains, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var keys []*DKIMKey
	for _, d := range domains {
		if !d.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, d.Name()))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			sel, ok := strings.CutSuffix(f.Name(), ".pem")
			if !ok || strings.HasPrefix(f.Name(), ".") || !f.Type().IsRegular() {
				continue
			}
			if checkKeyName(d.Name(), sel) != nil {
				continue
			}
			path := filepath.Join(dir, d.Name(), f.Name())
			info, err := f.Info()
			if err != nil {
				return nil, err
			}
			if info.Mode().Perm()&0o077 != 0 {
				return nil, fmt.Errorf("dkim: %s: permissions %v, want 0600", path, info.Mode().Perm())
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			s, err := ParseDKIMPrivateKey(data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			keys = append(keys, &DKIMKey{Domain: strings.ToLower(d.Name()), Selector: sel, Signer: s})
		}
	}
	return keys, nil
}

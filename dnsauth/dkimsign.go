package dnsauth

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mailagent/mailagent/internal/ctxio"
)

// dkimSignedHeaders are the fields signed when present (RFC 6376 section
// 5.4.1's list). Each occurrence is signed, and From is signed once more
// than it occurs ("oversigned", section 8.15) so that a second From cannot
// be added without breaking the signature.
var dkimSignedHeaders = []string{
	"From", "Sender", "Reply-To", "Subject", "Date", "Message-ID", "To", "Cc",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-ID",
	"Content-Description", "Resent-Date", "Resent-From", "Resent-Sender",
	"Resent-To", "Resent-Cc", "Resent-Message-ID", "In-Reply-To", "References",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post",
	"List-Subscribe", "List-Post", "List-Owner", "List-Archive",
}

// ErrNoDKIMKey is returned by Signer.Sign when no key covers the From
// domain: the message goes out unsigned.
var ErrNoDKIMKey = errors.New("dkim: no key for the From domain")

// Signer signs outgoing mail (RFC 6376 section 5) with relaxed/relaxed
// canonicalisation and SHA-256. It holds keys per domain; a domain with
// several keys (an RSA and an Ed25519 one, or an old and a new selector
// during rotation) gets one signature per key. A Signer is safe for
// concurrent use.
type Signer struct {
	keys map[string][]*DKIMKey
}

// NewSigner returns a Signer for keys.
func NewSigner(keys []*DKIMKey) *Signer {
	s := &Signer{keys: map[string][]*DKIMKey{}}
	for _, k := range keys {
		d := strings.ToLower(k.Domain)
		s.keys[d] = append(s.keys[d], k)
	}
	return s
}

// Keys returns the keys for domain.
func (s *Signer) Keys(domain string) []*DKIMKey {
	return s.keys[strings.ToLower(strings.TrimSuffix(domain, "."))]
}

// Sign signs msg for the domain of its From address, or the closest parent
// domain holding keys (d= of a parent domain still aligns for DMARC under
// relaxed alignment). It returns the DKIM-Signature fields to prepend,
// each ending in CRLF, or ErrNoDKIMKey.
func (s *Signer) Sign(ctx context.Context, msg io.Reader) (string, error) {
	br := bufio.NewReader(msg)
	hdr, err := readHeader(br)
	if err != nil {
		return "", err
	}
	from, err := FromDomain(hdr)
	if err != nil {
		return "", err
	}
	for d := from; d != ""; {
		if keys := s.keys[d]; len(keys) > 0 {
			return signWith(ctx, keys, hdr, br)
		}
		_, parent, ok := strings.Cut(d, ".")
		if !ok || !strings.Contains(parent, ".") {
			break
		}
		d = parent
	}
	return "", fmt.Errorf("%w (%s)", ErrNoDKIMKey, from)
}

// SignDomain signs msg with the keys of domain, whatever its From says.
func (s *Signer) SignDomain(ctx context.Context, domain string, msg io.Reader) (string, error) {
	keys := s.Keys(domain)
	if len(keys) == 0 {
		return "", fmt.Errorf("%w (%s)", ErrNoDKIMKey, domain)
	}
	br := bufio.NewReader(msg)
	hdr, err := readHeader(br)
	if err != nil {
		return "", err
	}
	return signWith(ctx, keys, hdr, br)
}

// signedHeaderKeys lists the fields of hdr to sign: each present one from
// dkimSignedHeaders as often as it occurs, plus one more From.
func signedHeaderKeys(hdr []byte) []string {
	count := map[string]int{}
	for _, f := range splitHeader(hdr) {
		count[strings.ToLower(f.name)]++
	}
	var keys []string
	for _, h := range dkimSignedHeaders {
		n := count[strings.ToLower(h)]
		if h == "From" {
			n++
		}
		for range n {
			keys = append(keys, h)
		}
	}
	return keys
}

func signWith(ctx context.Context, keys []*DKIMKey, hdr []byte, body io.Reader) (string, error) {
	headerKeys := signedHeaderKeys(hdr)
	signers := make([]*dkim.Signer, 0, len(keys))
	writers := make([]io.Writer, 0, len(keys))
	for _, k := range keys {
		sg, err := dkim.NewSigner(&dkim.SignOptions{
			Domain:                 k.Domain,
			Selector:               k.Selector,
			Signer:                 k.Signer,
			Hash:                   crypto.SHA256,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed,
			BodyCanonicalization:   dkim.CanonicalizationRelaxed,
			HeaderKeys:             headerKeys,
		})
		if err != nil {
			for _, s := range signers {
				s.Close()
			}
			return "", err
		}
		signers = append(signers, sg)
		writers = append(writers, sg)
	}
	w := io.MultiWriter(writers...)
	_, err := w.Write(hdr)
	if err == nil {
		_, err = io.Copy(w, ctxio.NewReader(ctx, body))
	}
	var out bytes.Buffer
	for _, sg := range signers {
		if cerr := sg.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err == nil {
			out.WriteString(sg.Signature())
		}
	}
	if err != nil {
		return "", err
	}
	return out.String(), nil
}

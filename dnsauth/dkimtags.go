package dnsauth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrDKIMSyntax is wrapped by the errors of ParseDKIMTags and
// ParseDKIMKeyRecord.
var ErrDKIMSyntax = errors.New("dkim: syntax error")

// ParseDKIMTags parses a tag-list (RFC 6376 section 3.2), the syntax of
// DKIM-Signature fields and of key records. Whitespace around tags and
// values is dropped (folding whitespace inside values is kept); a tag given
// twice is an error.
func ParseDKIMTags(s string) (map[string]string, error) {
	tags := map[string]string{}
	for _, spec := range strings.Split(s, ";") {
		if strings.TrimSpace(spec) == "" {
			continue // a trailing ";" is allowed
		}
		name, value, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("%w: %q is not tag=value", ErrDKIMSyntax, strings.TrimSpace(spec))
		}
		name = strings.TrimSpace(name)
		if name == "" || !isAlpha(name[0]) {
			return nil, fmt.Errorf("%w: invalid tag name %q", ErrDKIMSyntax, name)
		}
		for i := 1; i < len(name); i++ {
			if c := name[i]; !isAlpha(c) && !isDigit(c) && c != '_' {
				return nil, fmt.Errorf("%w: invalid tag name %q", ErrDKIMSyntax, name)
			}
		}
		if _, dup := tags[name]; dup {
			return nil, fmt.Errorf("%w: tag %q given twice", ErrDKIMSyntax, name)
		}
		tags[name] = strings.Trim(value, " \t\r\n")
	}
	return tags, nil
}

// DKIMKeyRecord is a parsed DKIM key record (RFC 6376 section 3.6.1).
type DKIMKeyRecord struct {
	KeyType   string   // k=: "rsa" (the default) or "ed25519"
	PublicKey []byte   // p= decoded; empty for a revoked key
	Hashes    []string // h=: acceptable hash algorithms, nil for all
	Flags     []string // t=: "y" (testing), "s" (strict i= domain)
	Services  []string // s=, nil for all
}

// ParseDKIMKeyRecord parses the TXT record published at
// selector._domainkey.domain.
func ParseDKIMKeyRecord(txt string) (*DKIMKeyRecord, error) {
	tags, err := ParseDKIMTags(txt)
	if err != nil {
		return nil, err
	}
	if v, ok := tags["v"]; ok && v != "DKIM1" {
		return nil, fmt.Errorf("%w: version %q, want DKIM1", ErrDKIMSyntax, v)
	}
	rec := &DKIMKeyRecord{KeyType: "rsa"}
	if k, ok := tags["k"]; ok {
		rec.KeyType = strings.ToLower(k)
	}
	p, ok := tags["p"]
	if !ok {
		return nil, fmt.Errorf("%w: no p= tag", ErrDKIMSyntax)
	}
	p = stripFWS(p)
	if rec.PublicKey, err = base64.StdEncoding.DecodeString(p); err != nil {
		return nil, fmt.Errorf("%w: p=: %v", ErrDKIMSyntax, err)
	}
	rec.Hashes = tagList(tags, "h")
	rec.Flags = tagList(tags, "t")
	rec.Services = tagList(tags, "s")
	return rec, nil
}

func tagList(tags map[string]string, name string) []string {
	v, ok := tags[name]
	if !ok {
		return nil
	}
	var out []string
	for _, e := range strings.Split(v, ":") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, strings.ToLower(e))
		}
	}
	return out
}

// stripFWS removes the folding whitespace base64 values may contain.
func stripFWS(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

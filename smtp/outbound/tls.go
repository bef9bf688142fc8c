package outbound

import "context"

// TLSRequirement is how much TLS a delivery demands.
type TLSRequirement int

const (
	// TLSOpportunistic uses STARTTLS when the server offers it, without
	// checking the certificate, and falls back to plaintext when the
	// handshake fails (RFC 3207 §4, RFC 7435).
	TLSOpportunistic TLSRequirement = iota
	// TLSEncrypt requires STARTTLS to succeed but accepts any certificate.
	TLSEncrypt
	// TLSVerify requires STARTTLS and a certificate valid for the host
	// name connected to (the MX name, or the smart host's name), checked
	// against Options.TLSConfig.RootCAs or the system roots.
	TLSVerify
)

// TLSPolicy decides per destination domain what TLS a delivery needs.
// It is where MTA-STS (RFC 8461) or DANE (RFC 7672) plug in; a policy
// that cannot be determined yet returns an error and the delivery is
// retried later.
type TLSPolicy interface {
	TLSRequirement(ctx context.Context, domain string) (TLSRequirement, error)
}

// TLSPolicyFunc adapts a function to TLSPolicy.
type TLSPolicyFunc func(ctx context.Context, domain string) (TLSRequirement, error)

// TLSRequirement calls f.
func (f TLSPolicyFunc) TLSRequirement(ctx context.Context, domain string) (TLSRequirement, error) {
	return f(ctx, domain)
}

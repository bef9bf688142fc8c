package smtp

import "crypto/tls"

// tlsVersionName names a TLS version the way Received fields usually do.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS1.0"
	case tls.VersionTLS11:
		return "TLS1.1"
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return "unknown"
}

func tlsCipherName(id uint16) string { return tls.CipherSuiteName(id) }

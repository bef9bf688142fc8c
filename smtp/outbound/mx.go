package outbound

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"strings"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/smtp/mail"
	"golang.org/x/net/idna"
)

// LookupMX returns the hosts that accept mail for domain, in the order to
// try them (RFC 5321 §5.1): MX records sorted by preference, shuffled among
// equal preference. A domain without MX records but with an address is its
// own implicit MX. A null MX (RFC 7505) fails with a permanent 556 5.1.10.
//
// An MX whose exchange is an IP address rather than a name is not valid
// (RFC 5321 §5.1 and RFC 2181 §10.3 ask for a host name); such records are
// skipped, and a domain with nothing else fails permanently. An exchange
// that is an alias (CNAME) is followed, as most MTAs do, when its address
// is looked up.
//
// Errors are *mail.Error: 4xx for DNS failures worth retrying, 5xx for
// answers that will not change soon.
func LookupMX(ctx context.Context, r dnsauth.Resolver, domain string) ([]string, error) {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	if domain == "" {
		return nil, permanent(5, 1, 2, "empty destination domain")
	}
	// An internationalised domain (RFC 6531 recipients) is looked up by
	// its A-labels (RFC 5890).
	if !isASCII(domain) {
		a, err := idna.Lookup.ToASCII(domain)
		if err != nil {
			return nil, permanent(5, 1, 2, "invalid internationalised domain "+domain+": "+err.Error())
		}
		domain = a
	}
	mxs, err := r.LookupMX(ctx, domain)
	if err != nil {
		if !isNotFound(err) {
			return nil, temporary(4, 4, 3, "MX lookup for "+domain+" failed: "+err.Error())
		}
		// No MX: the domain itself, if it has an address (RFC 5321 §5.1).
		addrs, aerr := r.LookupIPAddr(ctx, domain)
		switch {
		case aerr == nil && len(addrs) > 0:
			return []string{domain}, nil
		case aerr == nil || isNotFound(aerr):
			return nil, permanent(5, 1, 2, "domain "+domain+" has no MX and no address")
		default:
			return nil, temporary(4, 4, 3, "address lookup for "+domain+" failed: "+aerr.Error())
		}
	}
	var null bool
	valid := mxs[:0:0]
	for _, mx := range mxs {
		host := strings.TrimSuffix(strings.ToLower(mx.Host), ".")
		switch {
		case host == "":
			// RFC 7505 §3: a null MX is the only MX of its domain; one
			// mixed with real ones is a mistake and ignored.
			null = true
		case isIPLiteral(host):
			continue
		default:
			valid = append(valid, &net.MX{Host: host, Pref: mx.Pref})
		}
	}
	if null && len(valid) == 0 && len(mxs) == 1 {
		return nil, &mail.Error{Code: 556, EnhancedCode: gosmtp.EnhancedCode{5, 1, 10},
			Message: "domain " + domain + " does not accept mail (null MX)"}
	}
	if len(valid) == 0 {
		return nil, permanent(5, 4, 4, "domain "+domain+" has no usable MX host")
	}
	// Shuffle first so that the stable sort keeps equal preferences in a
	// random order: load is spread over equal exchangers.
	rand.Shuffle(len(valid), func(i, j int) { valid[i], valid[j] = valid[j], valid[i] })
	slices.SortStableFunc(valid, func(a, b *net.MX) int { return cmp.Compare(a.Pref, b.Pref) })
	hosts := make([]string, 0, len(valid))
	for _, mx := range valid {
		if !slices.Contains(hosts, mx.Host) {
			hosts = append(hosts, mx.Host)
		}
	}
	return hosts, nil
}

func isIPLiteral(host string) bool {
	return net.ParseIP(strings.Trim(host, "[]")) != nil
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

func permanent(a, b, c int, msg string) *mail.Error {
	return &mail.Error{Code: 550, EnhancedCode: gosmtp.EnhancedCode{a, b, c}, Message: msg}
}

func temporary(a, b, c int, msg string) *mail.Error {
	return &mail.Error{Code: 451, EnhancedCode: gosmtp.EnhancedCode{a, b, c}, Message: msg}
}

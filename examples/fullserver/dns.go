package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/examples/fullserver/config"
)

// The DNS commands: "dkim keygen" makes a signing key, "dns records"
// prints the zone-file lines a domain needs, "dns check" compares them
// with what DNS answers.

// cmdDKIM runs "dkim keygen DOMAIN [-selector S] [-algo rsa|ed25519]
// [-force]". DOMAIN must be in the domains table: the submission server
// signs its users' mail, and users belong to local domains, so a key for
// another name is most often a typo whose record would be published for
// nothing.
// -force makes the key anyway (for a domain added later, or signing
// through another server).
func cmdDKIM(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "keygen" {
		return fmt.Errorf("dkim: want keygen: %w", errUsage)
	}
	fs := flag.NewFlagSet("dkim keygen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	selector := fs.String("selector", "", "selector (default: algorithm and year-month)")
	algo := fs.String("algo", dnsauth.DKIMAlgoRSA, "rsa or ed25519")
	force := fs.Bool("force", false, "make the key even if DOMAIN is not a local domain")
	domain, err := parseDomainFlags(fs, args[1:])
	if err != nil {
		return fmt.Errorf("dkim keygen: %v: %w", err, errUsage)
	}
	if !*force {
		st, err := e.store(ctx)
		if err != nil {
			return err
		}
		local, err := st.IsLocalDomain(ctx, domain)
		if err != nil {
			return fmt.Errorf("dkim keygen: %w", err)
		}
		if !local {
			return fmt.Errorf("dkim keygen: %s is not a local domain; add it with 'fullserver domain add %s', or give -force to make the key anyway", domain, domain)
		}
	}
	if *selector == "" {
		// A new selector per rotation: publish the new key, let both sign,
		// then delete the old key file and its record.
		prefix := "rsa"
		if *algo == dnsauth.DKIMAlgoEd25519 {
			prefix = "ed"
		}
		*selector = prefix + time.Now().UTC().Format("200601")
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	k, err := dnsauth.GenerateDKIMKey(domain, *selector, *algo)
	if err != nil {
		return err
	}
	path, err := dnsauth.SaveDKIMKey(cfg.Path(cfg.DKIM.KeyDir, "dkim"), k)
	if err != nil {
		return err
	}
	rec, err := k.Record()
	if err != nil {
		return err
	}
	if err := e.applied(ctx, changedDKIM, nil); err != nil {
		return fmt.Errorf("dkim keygen: key written to %s, but %w", path, err)
	}
	fmt.Fprintf(e.stderr, "key written to %s; publish this record, then mail from %s is signed with it:\n", path, k.Domain)
	fmt.Fprintln(e.stdout, rec)
	return nil
}

// cmdDNS runs "dns records DOMAIN [-host H] [-ip IP,...]" and
// "dns check DOMAIN [-host H] [-ip IP,...]".
func cmdDNS(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || (args[0] != "records" && args[0] != "check") {
		return fmt.Errorf("dns: want records or check: %w", errUsage)
	}
	verb := args[0]
	fs := flag.NewFlagSet("dns "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	host := fs.String("host", "", "mail host name (default: hostname from the configuration)")
	ips := fs.String("ip", "", "comma-separated public addresses of the mail host (default: its A/AAAA records)")
	domain, err := parseDomainFlags(fs, args[1:])
	if err != nil {
		return fmt.Errorf("dns %s: %v: %w", verb, err, errUsage)
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	setup := dnsauth.DomainSetup{Domain: domain, MailHost: *host, Services: srvServices(cfg)}
	setup.AutoconfigPort = listenPort(cfg.Listen.HTTPS)
	if setup.MailHost == "" {
		setup.MailHost = cfg.Hostname
	}
	if setup.MailHost == "localhost" || !strings.Contains(setup.MailHost, ".") {
		return fmt.Errorf("dns %s: the mail host is %q; set hostname in the configuration or give -host", verb, setup.MailHost)
	}
	keys, err := dnsauth.LoadDKIMKeys(cfg.Path(cfg.DKIM.KeyDir, "dkim"))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if strings.EqualFold(k.Domain, strings.TrimSuffix(domain, ".")) {
			setup.DKIM = append(setup.DKIM, k)
		}
	}
	var resolver dnsauth.Resolver = net.DefaultResolver
	if cfg.DNS.Resolver != "" {
		resolver = dnsauth.NewServerResolver(cfg.DNS.Resolver)
	}
	resolver = dnsauth.WithTimeout(resolver, cfg.DNS.Timeout.Duration)
	if setup.IPs, err = hostIPs(ctx, resolver, setup.MailHost, *ips); err != nil {
		return fmt.Errorf("dns %s: %w", verb, err)
	}
	if len(setup.DKIM) == 0 {
		fmt.Fprintf(e.stderr, "no DKIM key for %s; make one with: fullserver dkim keygen %s\n", domain, domain)
	}
	if verb == "records" {
		recs, err := dnsauth.Records(setup)
		if err != nil {
			return err
		}
		fmt.Fprint(e.stdout, dnsauth.ZoneFile(recs))
		return nil
	}
	checks, err := dnsauth.CheckRecords(ctx, resolver, setup)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, dnsauth.FormatChecks(checks))
	if !dnsauth.ChecksOK(checks) {
		n := 0
		for _, c := range checks {
			if c.Status != dnsauth.CheckOK {
				n++
			}
		}
		return fmt.Errorf("%d of %d records of %s need attention", n, len(checks), domain)
	}
	return nil
}

// srvServices are the RFC 6186/8314 SRV services of the configured
// listeners, implicit TLS first; a listener that is off is published as
// not offered.
func srvServices(cfg *config.Config) []dnsauth.ClientService {
	l := cfg.Listen
	var out []dnsauth.ClientService
	for _, svc := range []struct{ name, addr string }{
		{"submissions", l.Submissions}, {"submission", l.Submission},
		{"imaps", l.IMAPS}, {"imap", l.IMAP}, {"pop3s", l.POP3S}, {"pop3", l.POP3},
	} {
		out = append(out, dnsauth.ClientService{Name: svc.name, Port: listenPort(svc.addr)})
	}
	return out
}

// listenPort is the port of a listen address, 0 when it is off.
func listenPort(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// parseDomainFlags parses flags given before or after the one DOMAIN
// operand, and returns it.
func parseDomainFlags(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() == 0 {
		return "", errors.New("missing DOMAIN")
	}
	domain := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return "", err
	}
	if fs.NArg() != 0 {
		return "", fmt.Errorf("unexpected %q", fs.Arg(0))
	}
	return domain, nil
}

// hostIPs parses list, or when it is empty asks DNS for host's addresses.
func hostIPs(ctx context.Context, r dnsauth.Resolver, host, list string) ([]net.IP, error) {
	var ips []net.IP
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("-ip: %q is not an address", s)
		}
		ips = append(ips, ip)
	}
	if len(ips) > 0 {
		return ips, nil
	}
	addrs, err := r.LookupIPAddr(ctx, host)
	if err != nil || len(addrs) == 0 {
		return nil, fmt.Errorf("cannot find the addresses of %s (%v); give them with -ip", host, err)
	}
	for _, a := range addrs {
		ips = append(ips, a.IP)
	}
	return ips, nil
}

// Package config reads fullserver's TOML configuration file.
//
// The key names are a published contract: scripts and administrators rely
// on them. Every key has a default, so an empty file (or none) gives the
// zero-configuration loopback server. Unknown keys and bad values are
// refused with the key's name, so a typo never silently falls back to a
// default.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/mailagent/mailagent/imap"
	"github.com/mailagent/mailagent/smtp"
)

// Config is the whole configuration. Paths that are empty default to a
// location inside DataDir (see Resolve).
type Config struct {
	// Hostname is the server's name in greetings, Received fields and
	// the self-signed certificate.
	Hostname string `toml:"hostname"`
	// PostmasterDomain is where mail to a bare "postmaster" (RFC 5321
	// 4.5.1, no domain) goes: postmaster@PostmasterDomain, routed like
	// any recipient. Empty means Hostname, as Postfix's $myorigin; set it
	// to a local domain whose postmaster exists.
	PostmasterDomain string `toml:"postmaster_domain"`
	// DataDir holds the SQLite directory, Maildirs, queue, DKIM keys and
	// the self-signed certificate.
	DataDir string `toml:"data_dir"`
	// User and Group (names or numbers; Group empty: the user's primary
	// group) are who a server started as root becomes once its
	// listeners are open, before it touches mail or the directory; the
	// seed installation's vmail (5000:5000). Empty: stay as started.
	User  string `toml:"user"`
	Group string `toml:"group"`

	Listen  Listen  `toml:"listen"`
	TLS     TLS     `toml:"tls"`
	Store   Store   `toml:"store"`
	Maildir Maildir `toml:"maildir"`
	IMAP    IMAP    `toml:"imap"`
	Limits  Limits  `toml:"limits"`
	DKIM    DKIM    `toml:"dkim"`
	Policy  Policy  `toml:"policy"`
	Milter  Milter  `toml:"milter"`
	Junk    Junk    `toml:"junk"`
	Queue   Queue   `toml:"queue"`
	Relay   Relay   `toml:"relay"`
	DNS     DNS     `toml:"dns"`
	Log     Log     `toml:"log"`
	Proxy   Proxy   `toml:"proxy"`

	// SendAs grants submitting users addresses beyond their own and the
	// forwardings that deliver to them, for MAIL FROM and the From and
	// Sender fields alike: user address → addresses, or "@domain" for a
	// whole domain (smtp.Options.SendAs).
	SendAs map[string][]string `toml:"send_as"`
}

// Listen holds one "HOST:PORT" per listener; the empty string turns that
// listener off. LMTP also accepts "unix:/path/to/socket".
type Listen struct {
	MX          string `toml:"mx"`
	Submission  string `toml:"submission"`
	Submissions string `toml:"submissions"`
	IMAP        string `toml:"imap"`
	IMAPS       string `toml:"imaps"`
	POP3        string `toml:"pop3"`
	POP3S       string `toml:"pop3s"`
	LMTP        string `toml:"lmtp"`
	Metrics     string `toml:"metrics"`
	// ManageSieve (RFC 5804, STARTTLS) lets users upload their Sieve
	// scripts; off by default, ":4190" in production.
	ManageSieve string `toml:"managesieve"`
	// HTTPS serves client self-configuration (Thunderbird autoconfig,
	// Microsoft Autodiscover, Apple .mobileconfig) with the mail
	// certificate, and ACME's TLS-ALPN-01 challenges; off by default,
	// ":443" in production.
	HTTPS string `toml:"https"`
	// HTTP answers ACME HTTP-01 challenges and redirects everything else
	// to HTTPS; off by default, ":80" in production when the CA should
	// validate over port 80.
	HTTP string `toml:"http"`
	// LMTPNetworks are the networks (CIDR prefixes or single addresses)
	// LMTP takes TCP clients from; LMTP has no authentication, so who may
	// connect is its boundary. Default loopback only.
	LMTPNetworks []string `toml:"lmtp_networks"`
	// LMTPSocketMode (octal, default "0600"), LMTPSocketOwner and
	// LMTPSocketGroup (names or numbers, default the server's) are the
	// permissions of LMTP's Unix socket ("unix:/path").
	LMTPSocketMode  string `toml:"lmtp_socket_mode"`
	LMTPSocketOwner string `toml:"lmtp_socket_owner"`
	LMTPSocketGroup string `toml:"lmtp_socket_group"`
	// TrustedProxies are the proxies (addresses or networks) whose
	// connections to every listener open with a PROXY protocol header
	// naming the real client; anyone else sending one is disconnected.
	TrustedProxies []string `toml:"trusted_proxies"`
}

// TrustedProxyPrefixes returns TrustedProxies parsed.
func (l Listen) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	return prefixes(l.TrustedProxies)
}

// Proxy is the proxy role: the IMAP, POP3, submission and LMTP
// listeners relay each user's sessions to the backend holding the
// mailbox, found in the directory (users.host, else domains.host, else a
// consistent hash over Backends).
type Proxy struct {
	Enabled bool `toml:"enabled"`
	// Backends are the hosts the consistent hash chooses among.
	Backends []string `toml:"backends"`
	// The backends' ports (the TLS ones under backend_tls = "implicit").
	IMAPPort       int `toml:"imap_port"`
	POP3Port       int `toml:"pop3_port"`
	SubmissionPort int `toml:"submission_port"`
	LMTPPort       int `toml:"lmtp_port"`
	// BackendTLS is "starttls", "implicit" or "none".
	BackendTLS string `toml:"backend_tls"`
	// CAFile holds the CA of the backends' certificates (empty: the
	// system's roots); ServerName is the name checked in them (empty:
	// the backend's host).
	CAFile     string `toml:"ca_file"`
	ServerName string `toml:"server_name"`
	// SourceAddress is the local address of connections to backends:
	// the one they list in listen.trusted_proxies.
	SourceAddress string `toml:"source_address"`
	// ConnectTimeout bounds connecting and logging in to a backend.
	ConnectTimeout Duration `toml:"connect_timeout"`
}

// LMTPPrefixes returns LMTPNetworks parsed; a single address is a
// prefix of its full length.
func (l Listen) LMTPPrefixes() ([]netip.Prefix, error) {
	return prefixes(l.LMTPNetworks)
}

// prefixes parses networks; a single address is a prefix of its full
// length.
func prefixes(nets []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(nets))
	for _, n := range nets {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			a, aerr := netip.ParseAddr(n)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a network or an address", n)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// LMTPSocketPerm returns LMTPSocketMode parsed.
func (l Listen) LMTPSocketPerm() (os.FileMode, error) {
	m, err := strconv.ParseUint(l.LMTPSocketMode, 8, 32)
	if err != nil || m > 0o777 || m == 0 {
		return 0, fmt.Errorf("%q is not an octal file mode", l.LMTPSocketMode)
	}
	return os.FileMode(m), nil
}

// TLS names the certificate. When both files are empty a self-signed
// certificate for Hostname is generated in DataDir.
type TLS struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// AllowInsecureAuth permits passwords before TLS on IMAP and POP3
	// (loopback development only). Submission never allows it.
	AllowInsecureAuth bool `toml:"allow_insecure_auth"`
	// Profile is the TLS policy (auth.TLSProfile) of submission, IMAP,
	// POP3 and LMTP and their implicit-TLS ports: "intermediate"
	// (default, Mozilla's: TLS 1.2+, ECDHE with AEAD ciphers only) or
	// "modern" (TLS 1.3 only).
	Profile string `toml:"profile"`
	// MXProfile is the MX's: "old" (default: TLS 1.0+, CBC allowed,
	// since a sender refused at STARTTLS sends in cleartext instead,
	// RFC 7435), "intermediate" or "modern".
	MXProfile string `toml:"mx_profile"`
	// ACME obtains and renews certificates from an ACME CA instead of
	// CertFile/KeyFile: for Hostname, ACMEHosts, and autoconfig. and
	// autodiscover. of every local domain, validated over listen.https
	// (TLS-ALPN-01) or listen.http (HTTP-01), kept in DATA/acme.
	ACME bool `toml:"acme"`
	// ACMEEmail is the account's contact address (the CA's expiry
	// notices); may be empty.
	ACMEEmail string `toml:"acme_email"`
	// ACMEDirectory is the CA's directory URL (Let's Encrypt's by
	// default).
	ACMEDirectory string `toml:"acme_directory"`
	// ACMECAFile is a PEM file of certificates trusted for the
	// directory's HTTPS (a private CA); empty: the system's.
	ACMECAFile string `toml:"acme_ca_file"`
	// ACMEHosts are more names to get certificates for (mail.DOMAIN,
	// imap.DOMAIN...), besides Hostname.
	ACMEHosts []string `toml:"acme_hosts"`
}

// Store selects the directory backend.
type Store struct {
	// Driver is "sqlite", "mysql" or "postgres".
	Driver string `toml:"driver"`
	// DSN is a file path for sqlite (default DATA/mailagent.db), a
	// go-sql-driver/mysql DSN such as "mail:secret@tcp(127.0.0.1:3306)/mail",
	// or a PostgreSQL URL or key=value DSN such as
	// "postgres://mail:secret@127.0.0.1:5432/mail?sslmode=disable".
	DSN string `toml:"dsn"`
	// SubaddressDelimiter separates "user" from "tag" in user+tag@domain;
	// empty turns subaddressing off.
	SubaddressDelimiter string `toml:"subaddress_delimiter"`
	// QueryTimeout bounds every directory lookup (default 5 s): a
	// database that does not answer in time (a locked table, a lost
	// network) gets clients a temporary failure (SMTP 451 4.3.0, IMAP
	// NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]) instead of a hung
	// connection.
	QueryTimeout Duration `toml:"query_timeout"`
	// ChangePoll is how often the server reads the directory's change
	// counter, so that a change made through another node or a command
	// clears its lookup cache (default 1 s; on PostgreSQL a LISTEN
	// connection hears changes at once and the poll is its fallback).
	ChangePoll Duration `toml:"change_poll"`
}

// IMAP holds the IMAP server's settings beyond its listeners.
type IMAP struct {
	// NamespacePrefix is the personal namespace's prefix (empty: none):
	// "INBOX." serves every folder but INBOX as INBOX.<name>, as the seed
	// installation's Dovecot namespace (prefix = INBOX., separator = .)
	// does, from the same Maildir (imap.Options.NamespacePrefix).
	NamespacePrefix string `toml:"namespace_prefix"`
}

// Maildir places the mailboxes.
type Maildir struct {
	// Base is the directory user Maildir paths are relative to (default
	// DATA/mail); the seed installation's is /home/vmail.
	Base string `toml:"base"`
	// QuotaFullTempfail answers a full mailbox with 452 4.2.2 (try again
	// later) instead of 552 5.2.2, as Dovecot's quota_full_tempfail.
	QuotaFullTempfail bool `toml:"quota_full_tempfail"`
	// Sieve runs each user's active Sieve script (HOME/.dovecot.sieve,
	// HOME being the Maildir's parent) at local delivery (default true).
	// SieveBefore and SieveAfter are global scripts run before and after
	// it (Pigeonhole's sieve_before and sieve_after); SieveGlobalDir
	// holds the scripts of include :global.
	Sieve          bool     `toml:"sieve"`
	SieveBefore    []string `toml:"sieve_before"`
	SieveAfter     []string `toml:"sieve_after"`
	SieveGlobalDir string   `toml:"sieve_global_dir"`
	// SieveRedirectSender is the envelope sender of a Sieve redirect:
	// "original" (the default; empty means it too) keeps the message's, "user"
	// sends it from the redirecting user's address, as Pigeonhole's
	// sieve_redirect_envelope_from = recipient, so that the destination's
	// SPF check passes. The null sender stays null either way.
	SieveRedirectSender string `toml:"sieve_redirect_sender"`
	// PollInterval is how often a folder someone watches (an IDLE
	// session) is checked for changes made by other processes and other
	// nodes sharing the Maildir tree (default 1s): four stats, whatever
	// the folder's size.
	PollInterval Duration `toml:"poll_interval"`
	// Watcher tells watched folders of local changes at once through the
	// file system (inotify; default true). Nodes sharing a tree over NFS
	// see each other's writes by the poll only, whatever this says;
	// false serves a local tree the same way.
	Watcher bool `toml:"watcher"`
}

// Limits bound what clients may do. MaxConnections and
// MaxConnectionsPerIP hold for all listeners together.
type Limits struct {
	MaxMessageBytes     int64 `toml:"max_message_bytes"`
	MaxRecipients       int   `toml:"max_recipients"`
	MaxConnections      int   `toml:"max_connections"`
	MaxConnectionsPerIP int   `toml:"max_connections_per_ip"`
	MaxAuthFailures     int   `toml:"max_auth_failures"`
	// SMTPCommandTimeout bounds a whole SMTP command line (MX,
	// submission, LMTP) and any one wait inside DATA or BDAT (5m).
	SMTPCommandTimeout Duration `toml:"smtp_command_timeout"`
	// POP3IdleTimeout and IMAPIdleTimeout bound a whole command line
	// of those protocols (10m and 30m).
	POP3IdleTimeout Duration `toml:"pop3_idle_timeout"`
	IMAPIdleTimeout Duration `toml:"imap_idle_timeout"`
	// LoginTimeout bounds connect to successful login on submission,
	// IMAP and POP3 (60s).
	LoginTimeout Duration `toml:"login_timeout"`
	// MinDataRate is the least average rate, in bytes per second, of
	// SMTP message content and IMAP literals once DataRateGrace has
	// passed (500 and 10s).
	MinDataRate   int64    `toml:"min_data_rate"`
	DataRateGrace Duration `toml:"data_rate_grace"`
	// MinPasswordLength is the fewest characters "user add" and "user
	// passwd" accept without -force (8; 0 accepts any).
	MinPasswordLength int `toml:"min_password_length"`
	// MaxFolders bounds one user's folders (10,000) and MaxFolderDepth
	// their hierarchy levels (16): IMAP CREATE and RENAME past them get
	// NO [LIMIT], a Sieve fileinto :create delivers to INBOX.
	MaxFolders     int `toml:"max_folders"`
	MaxFolderDepth int `toml:"max_folder_depth"`
}

// DKIM configures signing of submitted mail.
type DKIM struct {
	// Sign turns signing on; keys are read from KeyDir (default
	// DATA/dkim), made with "fullserver dkim keygen".
	Sign   bool   `toml:"sign"`
	KeyDir string `toml:"key_dir"`
}

// Policy says what inbound checks do with their verdicts.
type Policy struct {
	// SPF: "record" (only the header) or "reject" (refuse spf=fail at MAIL).
	SPF string `toml:"spf"`
	// DMARC: "follow" (the sender's p=), "record", "junk" or "reject".
	DMARC string `toml:"dmarc"`
	// IPRev: "record" or "require" (refuse clients without a PTR).
	IPRev string `toml:"iprev"`
}

// Milter lists the mail filters each SMTP listener passes its messages
// to over the milter protocol, in order (Postfix's smtpd_milters, one
// list per listener), and what happens when one fails.
type Milter struct {
	// MX, Submission (port 587 and 465) and LMTP are the listeners'
	// lists of milter addresses, "inet:host:port" or "unix:/path".
	MX         []string `toml:"mx"`
	Submission []string `toml:"submission"`
	LMTP       []string `toml:"lmtp"`
	// DefaultAction is milter_default_action: "tempfail" (451 4.7.1),
	// "accept" or "reject" when a milter is down, slow or broken.
	DefaultAction string `toml:"default_action"`
	// ConnectTimeout, CommandTimeout and ContentTimeout are Postfix's
	// milter_connect_timeout, milter_command_timeout and
	// milter_content_timeout.
	ConnectTimeout Duration `toml:"connect_timeout"`
	CommandTimeout Duration `toml:"command_timeout"`
	ContentTimeout Duration `toml:"content_timeout"`
}

// Junk says where mail a filter judged spam is delivered: the folder
// for everyone, per domain, and per user (the most specific wins);
// "INBOX" turns the Junk folder off.
type Junk struct {
	Folder  string            `toml:"folder"`
	Domains map[string]string `toml:"domains"`
	Users   map[string]string `toml:"users"`
	// RspamdController, when set (e.g. http://127.0.0.1:11334), is told
	// of every message a user moves into the junk folder over IMAP
	// (learnspam) or out of it into any folder but Trash (learnham), in
	// the background with retries; RspamdPassword is its password.
	RspamdController string `toml:"rspamd_controller"`
	RspamdPassword   string `toml:"rspamd_password"`
}

// JunkFolder is the folder spam goes to for address.
func (j Junk) JunkFolder(address string) string {
	if f, ok := j.Users[strings.ToLower(address)]; ok {
		return f
	}
	if i := strings.LastIndexByte(address, '@'); i >= 0 {
		if f, ok := j.Domains[strings.ToLower(address[i+1:])]; ok {
			return f
		}
	}
	return j.Folder
}

// Queue tunes outbound delivery.
type Queue struct {
	// Dir is the spool (default DATA/queue).
	Dir string `toml:"dir"`
	// MinBackoff and MaxBackoff bound the retry interval; MaxAge is when
	// a message is bounced as undeliverable.
	MinBackoff Duration `toml:"min_backoff"`
	MaxBackoff Duration `toml:"max_backoff"`
	MaxAge     Duration `toml:"max_age"`
	// PerDestination bounds concurrent connections to one destination.
	PerDestination int `toml:"per_destination"`
	// Port is the remote SMTP port (25; other values for test networks).
	Port int `toml:"port"`
	// Peers are other nodes' spool directories on shared storage: a
	// spool whose server is not running (its lock is free) has its
	// messages moved into this node's spool and delivered from here.
	Peers []string `toml:"peers"`
	// AdoptInterval is how often the peers' spools are tried.
	AdoptInterval Duration `toml:"adopt_interval"`
}

// Relay sends every outbound message through a smart host instead of MX
// lookups, for servers that cannot use port 25.
type Relay struct {
	// Host is "HOST:PORT" ("[HOST]:PORT" also accepted); empty = MX lookup.
	Host     string `toml:"host"`
	Username string `toml:"username"`
	Password string `toml:"password"`
	// ImplicitTLS uses TLS from the first byte (port 465) instead of
	// STARTTLS.
	ImplicitTLS bool `toml:"implicit_tls"`
	// CAFile is a PEM file of certificates trusted, besides the system's,
	// to sign the relay's certificate (a relay with a private CA).
	CAFile string `toml:"ca_file"`
}

// DNS selects the resolver.
type DNS struct {
	// Resolver is "HOST:PORT" of a DNS server; empty = the system's.
	Resolver string `toml:"resolver"`
	// Timeout bounds one lookup (default 5 s, the system resolver's
	// default wait for an answer, which Postfix's lookups get too). A
	// resolver that does not answer costs an inbound message about
	// three of them, and the checks record temperror.
	Timeout Duration `toml:"timeout"`
}

// Log configures logging.
type Log struct {
	// Format is "text" or "json".
	Format string `toml:"format"`
	// Level is "debug", "info", "warn" or "error".
	Level string `toml:"level"`
}

// Duration is a time.Duration written as a string ("5m", "120h").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the zero-configuration settings: everything on
// loopback, on ports above 1024, under ./data.
func Default() *Config {
	return &Config{
		Hostname: "localhost",
		DataDir:  "./data",
		Listen: Listen{
			MX:          "127.0.0.1:2525",
			Submission:  "127.0.0.1:2587",
			Submissions: "127.0.0.1:2465",
			IMAP:        "127.0.0.1:2143",
			IMAPS:       "127.0.0.1:2993",
			POP3:        "127.0.0.1:2110",
			POP3S:       "127.0.0.1:2995",
			LMTP:        "127.0.0.1:2424",
			Metrics:     "127.0.0.1:9425",

			LMTPNetworks:   []string{"127.0.0.0/8", "::1/128"},
			LMTPSocketMode: "0600",
			TrustedProxies: []string{},
		},
		TLS: TLS{Profile: "intermediate", MXProfile: "old",
			ACMEDirectory: "https://acme-v02.api.letsencrypt.org/directory", ACMEHosts: []string{}},
		Maildir: Maildir{Sieve: true, SieveRedirectSender: "original", PollInterval: Duration{time.Second}, Watcher: true},
		Store: Store{Driver: "sqlite", SubaddressDelimiter: "+", QueryTimeout: Duration{5 * time.Second},
			ChangePoll: Duration{time.Second}},
		Limits: Limits{
			MaxMessageBytes:     50 << 20,
			MaxRecipients:       100,
			MaxConnections:      1000,
			MaxConnectionsPerIP: 20,
			MaxAuthFailures:     3,
			MinPasswordLength:   8,
			MaxFolders:          10000,
			MaxFolderDepth:      16,
			SMTPCommandTimeout:  Duration{5 * time.Minute},
			POP3IdleTimeout:     Duration{10 * time.Minute},
			IMAPIdleTimeout:     Duration{30 * time.Minute},
			LoginTimeout:        Duration{time.Minute},
			MinDataRate:         500,
			DataRateGrace:       Duration{10 * time.Second},
		},
		DKIM:   DKIM{Sign: true},
		Policy: Policy{SPF: "record", DMARC: "follow", IPRev: "record"},
		Junk:   Junk{Folder: "Junk"},
		Milter: Milter{DefaultAction: "tempfail", ConnectTimeout: Duration{30 * time.Second},
			CommandTimeout: Duration{30 * time.Second}, ContentTimeout: Duration{300 * time.Second}},
		Queue: Queue{
			MinBackoff:     Duration{5 * time.Minute},
			MaxBackoff:     Duration{4000 * time.Second},
			MaxAge:         Duration{5 * 24 * time.Hour},
			PerDestination: 20,
			Port:           25,
			Peers:          []string{},
			AdoptInterval:  Duration{10 * time.Second},
		},
		DNS: DNS{Timeout: Duration{5 * time.Second}},
		Log: Log{Format: "text", Level: "info"},
		Proxy: Proxy{Backends: []string{}, IMAPPort: 143, POP3Port: 110, SubmissionPort: 587, LMTPPort: 24,
			BackendTLS: "starttls", ConnectTimeout: Duration{5 * time.Second}},
	}
}

// Load reads the file at path over the defaults and validates the result.
// A missing file is an error; use Default for no file.
func Load(path string) (*Config, error) {
	c := Default()
	md, err := toml.DecodeFile(path, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("%s: unknown key %s", path, strings.Join(keys, ", "))
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks every value and names the key of the first bad one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if c.Hostname == "" || strings.ContainsAny(c.Hostname, " \t/@") {
		bad("hostname", "%q is not a host name", c.Hostname)
	}
	if strings.ContainsAny(c.PostmasterDomain, " \t/@") {
		bad("postmaster_domain", "%q is not a domain", c.PostmasterDomain)
	}
	if c.Group != "" && c.User == "" {
		bad("group", "needs user")
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	for key, addr := range map[string]string{
		"listen.mx": c.Listen.MX, "listen.submission": c.Listen.Submission,
		"listen.submissions": c.Listen.Submissions, "listen.imap": c.Listen.IMAP,
		"listen.imaps": c.Listen.IMAPS, "listen.pop3": c.Listen.POP3,
		"listen.pop3s": c.Listen.POP3S, "listen.metrics": c.Listen.Metrics,
		"listen.lmtp": c.Listen.LMTP, "dns.resolver": c.DNS.Resolver,
		"listen.https": c.Listen.HTTPS, "listen.managesieve": c.Listen.ManageSieve,
		"listen.http": c.Listen.HTTP,
	} {
		if addr == "" || (key == "listen.lmtp" && strings.HasPrefix(addr, "unix:")) {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not HOST:PORT", addr)
		}
	}
	if err := imap.CheckNamespacePrefix(c.IMAP.NamespacePrefix); err != nil {
		bad("imap.namespace_prefix", "%q: %v", c.IMAP.NamespacePrefix, err)
	}
	if _, err := c.Listen.LMTPPrefixes(); err != nil {
		bad("listen.lmtp_networks", "%v", err)
	}
	if _, err := c.Listen.TrustedProxyPrefixes(); err != nil {
		bad("listen.trusted_proxies", "%v", err)
	}
	for key, v := range map[string]int{"proxy.imap_port": c.Proxy.IMAPPort, "proxy.pop3_port": c.Proxy.POP3Port,
		"proxy.submission_port": c.Proxy.SubmissionPort, "proxy.lmtp_port": c.Proxy.LMTPPort} {
		if v <= 0 || v > 65535 {
			bad(key, "%d is not a port", v)
		}
	}
	if a := c.Proxy.SourceAddress; a != "" && net.ParseIP(a) == nil {
		bad("proxy.source_address", "%q is not an IP address", a)
	}
	if c.Proxy.ConnectTimeout.Duration <= 0 {
		bad("proxy.connect_timeout", "must be positive")
	}
	for _, b := range c.Proxy.Backends {
		if b == "" || strings.ContainsAny(b, " \t/@") {
			bad("proxy.backends", "%q is not a host", b)
		}
	}
	if _, err := c.Listen.LMTPSocketPerm(); err != nil {
		bad("listen.lmtp_socket_mode", "%v", err)
	}
	if c.TLS.ACME {
		switch {
		case c.TLS.CertFile != "":
			bad("tls.acme", "cert_file and key_file must be empty with acme")
		case c.Listen.HTTPS == "" && c.Listen.HTTP == "":
			bad("tls.acme", "needs listen.https (TLS-ALPN-01 on port 443) or listen.http (HTTP-01 on port 80)")
		case !strings.HasPrefix(c.TLS.ACMEDirectory, "https://"):
			bad("tls.acme_directory", "%q is not an https URL", c.TLS.ACMEDirectory)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.cert_file", "cert_file and key_file must be set together")
	}
	switch c.Maildir.SieveRedirectSender {
	case "", "original", "user":
	default:
		bad("maildir.sieve_redirect_sender", "%q is not original or user", c.Maildir.SieveRedirectSender)
	}
	switch c.Store.Driver {
	case "sqlite":
	case "mysql", "postgres":
		if c.Store.DSN == "" {
			bad("store.dsn", "required for the %s driver", c.Store.Driver)
		}
	default:
		bad("store.driver", "%q is not sqlite, mysql or postgres", c.Store.Driver)
	}
	if c.Limits.MaxMessageBytes <= 0 {
		bad("limits.max_message_bytes", "must be positive")
	}
	for key, v := range map[string]int{
		"limits.max_recipients": c.Limits.MaxRecipients, "limits.max_connections": c.Limits.MaxConnections,
		"limits.max_connections_per_ip": c.Limits.MaxConnectionsPerIP, "limits.max_auth_failures": c.Limits.MaxAuthFailures,
		"queue.per_destination": c.Queue.PerDestination,
		"limits.max_folders":    c.Limits.MaxFolders, "limits.max_folder_depth": c.Limits.MaxFolderDepth,
	} {
		if v <= 0 {
			bad(key, "must be positive")
		}
	}
	if c.Limits.MinDataRate <= 0 {
		bad("limits.min_data_rate", "must be positive")
	}
	for key, d := range map[string]Duration{
		"limits.smtp_command_timeout": c.Limits.SMTPCommandTimeout, "limits.pop3_idle_timeout": c.Limits.POP3IdleTimeout,
		"limits.imap_idle_timeout": c.Limits.IMAPIdleTimeout, "limits.login_timeout": c.Limits.LoginTimeout,
		"limits.data_rate_grace": c.Limits.DataRateGrace,
		"milter.connect_timeout": c.Milter.ConnectTimeout, "milter.command_timeout": c.Milter.CommandTimeout,
		"milter.content_timeout": c.Milter.ContentTimeout, "maildir.poll_interval": c.Maildir.PollInterval,
		"queue.adopt_interval": c.Queue.AdoptInterval,
	} {
		if d.Duration <= 0 {
			bad(key, "must be positive")
		}
	}
	if c.Queue.Port <= 0 || c.Queue.Port > 65535 {
		bad("queue.port", "%d is not a port", c.Queue.Port)
	}
	if c.Queue.MinBackoff.Duration <= 0 || c.Queue.MaxBackoff.Duration < c.Queue.MinBackoff.Duration {
		bad("queue.max_backoff", "must be at least min_backoff, and both positive")
	}
	if c.Queue.MaxAge.Duration <= 0 {
		bad("queue.max_age", "must be positive")
	}
	if c.DNS.Timeout.Duration <= 0 {
		bad("dns.timeout", "must be positive")
	}
	if c.Store.QueryTimeout.Duration <= 0 {
		bad("store.query_timeout", "must be positive")
	}
	if c.Store.ChangePoll.Duration <= 0 {
		bad("store.change_poll", "must be positive")
	}
	oneOf := func(key, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		bad(key, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
	oneOf("tls.profile", c.TLS.Profile, "modern", "intermediate", "old")
	oneOf("tls.mx_profile", c.TLS.MXProfile, "modern", "intermediate", "old")
	oneOf("policy.spf", c.Policy.SPF, "record", "reject")
	oneOf("policy.dmarc", c.Policy.DMARC, "follow", "record", "junk", "reject")
	oneOf("policy.iprev", c.Policy.IPRev, "record", "require")
	oneOf("milter.default_action", c.Milter.DefaultAction, "tempfail", "accept", "reject")
	for key, f := range map[string]string{"junk.folder": c.Junk.Folder} {
		if f == "" || strings.ContainsAny(f, "\x00\r\n") {
			bad(key, "%q is not a folder name", f)
		}
	}
	if u := c.Junk.RspamdController; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		bad("junk.rspamd_controller", "%q: want an http:// or https:// URL", u)
	}
	for key, m := range map[string]map[string]string{"junk.domains": c.Junk.Domains, "junk.users": c.Junk.Users} {
		for k, f := range m {
			if k != strings.ToLower(k) || f == "" || strings.ContainsAny(f, "\x00\r\n") {
				bad(key, "%q = %q: want a lower-case key and a folder name", k, f)
			}
		}
	}
	for key, list := range map[string][]string{"milter.mx": c.Milter.MX, "milter.submission": c.Milter.Submission, "milter.lmtp": c.Milter.LMTP} {
		for _, a := range list {
			if _, _, err := smtp.ParseMilterAddress(a); err != nil {
				bad(key, "%q: want inet:host:port or unix:/path", a)
			}
		}
	}
	oneOf("proxy.backend_tls", c.Proxy.BackendTLS, "starttls", "implicit", "none")
	oneOf("log.format", c.Log.Format, "text", "json")
	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	if c.Relay.Host != "" {
		if _, _, err := net.SplitHostPort(c.Relay.Host); err != nil {
			bad("relay.host", "%q is not HOST:PORT", c.Relay.Host)
		}
	}
	if c.Relay.CAFile != "" && c.Relay.Host == "" {
		bad("relay.ca_file", "needs relay.host")
	}
	if (c.Relay.Username == "") != (c.Relay.Password == "") {
		bad("relay.username", "username and password must be set together")
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// Path returns p, or DataDir/def when p is empty; relative paths stay
// relative to the working directory, like DataDir itself.
func (c *Config) Path(p, def string) string {
	if p != "" {
		return p
	}
	return filepath.Join(c.DataDir, def)
}

// StoreDSN is the directory's DSN with the SQLite default applied.
func (c *Config) StoreDSN() string {
	if c.Store.Driver == "sqlite" {
		return c.Path(c.Store.DSN, "mailagent.db")
	}
	return c.Store.DSN
}

// SystemFile is the configuration file of a system-wide installation,
// the last place FindFile looks.
var SystemFile = "/etc/mailagent/fullserver.toml"

// FindFile returns the configuration file to read, the same for the
// server and every command: explicit (-config) when given, else
// $MAILAGENT_CONFIG when set, else DATA/fullserver.toml when it exists,
// else SystemFile when it exists, else "" (use Default).
func FindFile(explicit, dataDir string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if env := os.Getenv("MAILAGENT_CONFIG"); env != "" {
		return env, nil
	}
	for _, p := range []string{filepath.Join(dataDir, "fullserver.toml"), SystemFile} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	return "", nil
}

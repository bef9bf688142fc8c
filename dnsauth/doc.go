// Package dnsauth holds mailagent's DNS access and sender authentication:
// SPF, DKIM, DMARC, iprev and Authentication-Results on received mail,
// DKIM signatures on sent mail, and the DNS records a mail domain must
// publish, with a checker for them.
//
// Every DNS lookup in mailagent goes through the Resolver interface, which
// *net.Resolver satisfies. NewServerResolver talks to one given server (a
// local validating resolver, or a test network's), WithTimeout bounds each
// lookup, and MockResolver answers from maps for tests, with injectable
// failures and hangs.
//
// # Standards
//
//   - RFC 7208, SPF: CheckSPF and CheckSPFHelo, built on
//     blitiri.com.ar/go/spf; ParseSPF checks record syntax.
//   - RFC 6376, DKIM; RFC 8301 (rsa-sha256 only, RSA keys of 1024 bits
//     and more); RFC 8463, Ed25519-SHA256: VerifyDKIM and Signer, built on
//     github.com/emersion/go-msgauth/dkim.
//   - RFC 7489, DMARC: EvaluateDMARC, organizational domains from the
//     Public Suffix List (golang.org/x/net/publicsuffix).
//   - RFC 8601, Authentication-Results, with the iprev method of its
//     section 3 and header.b of RFC 6008: AuthResults, StripAuthResults,
//     CheckIPRev.
//   - RFC 5321 section 5.1 and RFC 2181 section 10.3 (MX targets name a
//     host, never an address or an alias), RFC 1035: Records and
//     CheckRecords.
//
// # SPF
//
// The SPF library evaluates mechanisms; this package adds, through the
// resolver it hands the library: a strict syntax check of every record
// fetched, so that an error anywhere in a record is a permerror before
// anything matches (RFC 7208 section 4.6), including invalid top-level
// labels and non-ASCII text; the p macro (validated reverse name) and
// domain-specs containing "/", which the library cannot express; the
// exp= explanation with the macros c, r and t (section 6.2); and the
// initial domain checks of section 4.3. Evaluation is bounded by the
// caller's context (SPFLookupTimeout when it has no deadline) and by the
// limits of section 4.6.4: 10 DNS-querying terms, 2 void lookups, 10 MX
// and 10 PTR names.
//
// The openspf RFC 7208 test suite (testdata/rfc7208-tests.yml, 203
// cases) runs in TestSPFSuiteRFC7208. One case differs:
//
//   - v-macro-ip6: the suite expects the i macro of an IPv6 address in
//     upper-case hex nibbles; RFC 7208 section 7.4 writes its own example
//     in lower case, which is what we produce. DNS names compare without
//     case, so only the explanation text differs.
//
// The suite's TIMEOUT entries beside a TXT record stand for a type SPF
// (99) query, which RFC 7208 no longer makes, and are ignored.
//
// # DKIM keys
//
// Keys live in a directory, one PKCS #8 PEM file per key at
// DIR/domain/selector.pem, mode 0600 (LoadDKIMKeys refuses others).
// GenerateDKIMKey makes RSA-2048 (the default) or Ed25519 keys;
// SaveDKIMKey never replaces a key. A domain with several keys is signed
// with each: an RSA and an Ed25519 key give two signatures, so verifiers
// that do not know Ed25519 still see a valid one. Rotation is a new
// selector: generate it, publish its record, and once the record has
// spread both keys sign; then delete the old key file and, a few days
// later, its record.
//
// # Wiring into an SMTP server
//
// The MX runs the checks in the order of the session, each with the
// session's context and a resolver wrapped in WithTimeout:
//
//   - at connect: CheckIPRev(ctx, r, ip, helo). A policy may refuse
//     clients whose address has no PTR at all (!HasPTR, not a temperror),
//     as Postfix's reject_unknown_reverse_client_hostname does;
//   - at MAIL FROM: CheckSPF(ctx, logger, r, ip, helo, mailFrom). A policy
//     may refuse SPFFail with 550 5.7.23, quoting Explanation;
//   - at the end of DATA: StripAuthResults(msg, authservID) first, then
//     VerifyMessage(ctx, r, msg, &spf), which is VerifyDKIM(ctx, r, msg),
//     FromDomain(header) and EvaluateDMARC(ctx, r, from, spf, dkim) with
//     the DMARC lookups made during the DKIM ones.
//     DMARCResult.Action(mode) says whether to accept, deliver to Junk, or
//     refuse with 550 and RejectText; the zero DMARCMode follows the
//     sending domain's policy (p=reject refused, p=quarantine to Junk,
//     p=none recorded). Then prepend AuthResults{...}.Header(authservID).
//
// Within each step the lookups that do not depend on each other run
// concurrently, so that a slow resolver, or one that drops queries, costs
// a step about one lookup's time (one WithTimeout timeout) rather than one
// per lookup: iprev's forward lookups of every reverse name; the keys of
// every DKIM signature of a message; and, in VerifyMessage, the From
// domain's DMARC record beside them. Lookups that depend on an earlier
// answer stay in sequence: the PTR before the forward lookups, the
// organizational domain's DMARC record after the From domain's, and SPF's
// terms, evaluated in order by the SPF library. Every check returns only
// once the lookups it started have returned, and relies on the Resolver
// to end a lookup when its context ends, as *net.Resolver does.
//
// Submission signs before queueing: Signer.Sign(ctx, msg) returns the
// DKIM-Signature fields to prepend, or ErrNoDKIMKey for a From domain
// without keys (send unsigned).
//
// # Records
//
// Records(DomainSetup) lists what a domain needs: MX naming the mail host,
// its A/AAAA, SPF for the domain and for the host's HELO name, one DKIM
// record per key, DMARC at p=none with aggregate reports, and the PTR the
// address owner must set. CheckRecords compares them with DNS and says for
// each ok, missing, wrong or error, with the problem and the line to
// publish; FormatChecks writes that for a person. MTA-STS and TLS-RPT
// records are not generated yet.
package dnsauth

// Package outbound is mailagent's mail transfer client: it carries a
// queued message to the next hop and reports one result per recipient.
//
// A next hop is a domain whose mail exchangers are looked up in DNS, a
// smart host reached directly (optionally with implicit TLS and AUTH), or
// an LMTP server over TCP or a Unix socket. Every DNS lookup goes through
// a dnsauth.Resolver; the port and dialer are options so that tests and
// private test networks can run on loopback.
//
// Standards implemented:
//   - RFC 5321: SMTP client, MX selection (§5.1), implicit MX, replies
//   - RFC 7505: null MX ("0 ."), which fails delivery at once
//   - RFC 3207: STARTTLS (opportunistic, or required by a TLSPolicy)
//   - RFC 8314: implicit TLS to a submission smart host
//   - RFC 4954, RFC 4616: AUTH PLAIN (and the LOGIN mechanism) to smart hosts
//   - RFC 1870: SIZE
//   - RFC 6152: BODY=8BITMIME when the server offers it; an 8-bit
//     message goes to a server without it unchanged, as Postfix does,
//     since converting it would break its DKIM signature
//   - RFC 6531: SMTPUTF8 (a message that needs it fails permanently
//     when the server lacks it)
//   - RFC 2033: LMTP client with per-recipient replies
//   - RFC 3461: RET and ENVID on MAIL, NOTIFY and ORCPT on RCPT, to a
//     server that offers DSN (Result.DSN says it did)
//   - RFC 3463: enhanced status codes on every result
//
// Message content is always sent with CRLF line endings and dot-stuffed:
// a bare CR or LF in a stored message is turned into CRLF on the wire, so
// a relay built on this package cannot be used to smuggle a second message
// past a receiver that parses line endings differently.
package outbound

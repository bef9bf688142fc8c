// Package smtp implements mailagent's SMTP roles as go-smtp backends: the
// mail exchanger (MX, port 25), the submission agent (587 with STARTTLS,
// 465 with implicit TLS) and the LMTP server, with the checks they run
// (SenderAuth, DKIMSigner, the milter client Milter).
//
// A Server plays one Role over a mail.Target, normally a router.Router
// (package smtp/router) whose local deliveries go through local.Delivery
// (package smtp/local) into package maildir and whose remote ones go to
// a queue Target (package smtp/queue). This package imports none of
// them: the types they share (Envelope, Body, Target, Delivery, Error,
// Verdict and the checker interfaces) are in package smtp/mail. Targets
// receive mail in two phases (mail.Delivery): recipients and body first,
// then Commit; a server answers 250 only after Commit returned, that is
// after every copy was fsynced or durably queued. Body writes every copy
// without making any visible (local.Delivery stages unnamed, fsynced
// files; the queue its spool file) and Commit names them, so a message
// over SMTP is stored for all its recipients or none: a temporary
// failure of any copy refuses it whole, a permanent one found after DATA
// is bounced for that recipient alone through a mail.Bouncer (RFC 3464),
// and LMTP answers each recipient with its own reply (see router.Router).
//
// Sender authentication plugs in through mail.ConnectChecker (iprev),
// mail.MailChecker (SPF) and mail.MessageChecker (DKIM, DMARC) on the MX, whose
// Verdicts accept, add header fields, reject or file in Junk; SenderAuth
// is those hooks wired to package dnsauth (iprev, SPF, DKIM, DMARC).
// A mail.Signer signs submitted mail; DKIMSigner is one over dnsauth's keys.
//
// go-smtp parses commands and runs the session; below it, each
// connection runs TLS itself and scans the plaintext (see scanner in
// scanner.go): DATA ends at the first CRLF "." CRLF on the wire, content
// with a bare CR, bare LF or NUL is refused (550 5.6.0) after it has
// been read to that end, and the MAIL and RCPT lines are checked as they
// arrived.
//
// Standards implemented:
//   - RFC 5321 SMTP: replies, trace fields (section 4.4), line and size
//     limits, CRLF line endings only (section 2.3.8); source routes
//     (section 4.1.2, "@a,@b:user@c") refused with 501 5.1.7 in MAIL and
//     501 5.1.3 in RCPT, as Postfix refuses bad envelope syntax;
//     RCPT TO:<postmaster> accepted (section 4.5.1) as postmaster@
//     Options.PostmasterDomain.
//   - RFC 6409 message submission; RFC 8314 implicit TLS on 465.
//   - RFC 2033 LMTP, with a reply per recipient.
//   - RFC 3464 delivery status notifications for recipients that fail
//     after DATA (through a mail.Bouncer, the queue).
//   - RFC 3461 DSN: RET, ENVID, NOTIFY and ORCPT accepted (ENVID at most
//     100 and ORCPT 500 characters decoded, no control characters:
//     501 5.5.4) and handed to the target (mail.Envelope.DSNReturn and
//     EnvID, mail.RcptDSNFrom on AddRecipient's context). NOTIFY=SUCCESS
//     is answered, once the Maildir copies are committed (MX, submission,
//     LMTP), by one notice naming every such recipient, Action: delivered
//     (through a mail.SuccessNotifier, the queue); mail sent on is
//     reported by the next hop, or by the queue as Action: relayed.
//   - RFC 3207 STARTTLS, with commands pipelined before it discarded.
//   - RFC 4954 AUTH (PLAIN RFC 4616, LOGIN), only over TLS (538 5.7.11).
//   - RFC 1870 SIZE, RFC 2920 PIPELINING, RFC 3030 CHUNKING,
//     RFC 6152 8BITMIME, RFC 6531 SMTPUTF8.
//   - RFC 3463 and RFC 2034 enhanced status codes.
//   - RFC 3848 transmission types (ESMTPSA, LMTP, ...) in Received.
//   - RFC 5322 header fields: Message-ID and Date added on submission.
//   - RFC 8601 Authentication-Results, forged ones with our authserv-id
//     removed; through dnsauth, RFC 8601 iprev, RFC 7208 SPF, RFC 6376
//     DKIM and RFC 7489 DMARC.
package smtp

// Package pop3 is a POP3 server over package maildir, logging users in
// through package auth. It is meant to replace Dovecot's POP3 service
// without its users' clients noticing: the same unique-id listings, the
// same octet counts, the same new/ to cur/ moves and \Seen flags.
//
// A session reads the user's INBOX only. The maildrop is locked for the
// whole TRANSACTION state with maildir's cross-process session lock (an
// flock, which the kernel drops when the holder dies, so a crashed
// process never locks a user out); a second login gets "-ERR [IN-USE]".
// Deletions are applied only when the client sends QUIT in the
// TRANSACTION state; a dropped connection, a timeout or a server
// shutdown deletes nothing. \Seen is set on messages retrieved with
// RETR (not TOP), when the session ends however it ends, as Dovecot does.
//
// Passwords travel in the clear in USER/PASS and in both SASL mechanisms
// served (PLAIN and LOGIN), so they are refused before STLS or on a
// listener without implicit TLS unless Options.AllowInsecureAuth is set.
//
// APOP is not offered: it needs the server to hold every password in the
// clear (or an equivalent of it) to compute the MD5 digest the client
// sends, while package auth stores only one-way hashes. Its MD5
// challenge-response is also broken (collisions recover the password's
// first characters), and TLS with PLAIN is what clients use instead.
//
// UIDL values follow Dovecot 2.3's default pop3_uidl_format for Maildir,
// "%08Xu%08Xv" (the message's IMAP UID then the folder's UIDVALIDITY, as
// eight lower-case hex digits each, as Dovecot's %X writes them), so a
// client that leaves mail on the server does not fetch everything again
// after a move from Dovecot. Options.UIDLFormat takes the other Dovecot
// variables that a Maildir can answer without reading the message (not
// %m, a digest of the header). UIDLs that Dovecot keeps in
// dovecot-uidlist's "P" field (pop3_save_uidl, or set by a migration
// from another server) are not read: such a Maildir must be served with
// a format that gives the same values.
//
// Standards implemented:
//   - RFC 1939, Post Office Protocol - Version 3 (without APOP).
//   - RFC 2449, POP3 Extension Mechanism: CAPA, the TOP, UIDL, USER, SASL,
//     RESP-CODES, PIPELINING, EXPIRE, LOGIN-DELAY and IMPLEMENTATION
//     capabilities, the IN-USE and LOGIN-DELAY response codes, and the
//     255-octet command line.
//   - RFC 2595, Using TLS with IMAP, POP3 and ACAP: STLS.
//   - RFC 3206, The SYS and AUTH POP Response Codes: AUTH-RESP-CODE,
//     the [AUTH] and [SYS/TEMP] codes. [AUTH] answers wrong credentials,
//     including the last failure allowed on a connection
//     (Options.MaxAuthFailures), whose reply says the server is closing
//     the connection; [SYS/TEMP] answers a throttled client and a
//     failure of the directory.
//   - RFC 5034, The POP3 SASL Authentication Mechanism: AUTH with an
//     initial response, PLAIN (RFC 4616) and LOGIN through package auth.
//   - RFC 8314, Cleartext Considered Obsolete: implicit TLS (port 995).
package pop3

// Package auth checks passwords for every login of mailagent's servers:
// password hashing and verification, the Authenticator that SMTP
// submission, IMAP and POP3 call, failure throttling, the SASL PLAIN and
// LOGIN server mechanisms, and TLS certificate loading.
//
// Stored hashes carry Dovecot-style scheme prefixes ("{ARGON2ID}",
// "{SHA512-CRYPT}", "{BLF-CRYPT}"...). A hash without a prefix is read as
// Dovecot's CRYPT scheme, the seed installation's default_pass_scheme:
// its format is recognised from the string itself ("$6$", "$2y$", a
// 13-character traditional DES crypt as MySQL's ENCRYPT() produced).
// New hashes are argon2id, and a successful login against any weaker
// hash rewrites it as argon2id, so a migrated installation converges to
// modern hashes without asking users for anything.
//
// Standards and formats implemented:
//   - RFC 9106, Argon2, in the PHC string format
//     ("$argon2id$v=19$m=...,t=...,p=...$salt$hash").
//   - crypt(3) formats: SHA-crypt ("$5$", "$6$", Ulrich Drepper's
//     specification), MD5-crypt ("$1$", Poul-Henning Kamp's), bcrypt
//     ("$2a$", "$2b$", "$2y$") and traditional DES crypt.
//   - RFC 4422, SASL; RFC 4616, the PLAIN mechanism;
//     draft-murchison-sasl-login, the LOGIN mechanism.
//   - RFC 8446 and RFC 5246: TLS 1.3 and 1.2, under Mozilla's server side
//     TLS profiles (TLSProfile); RFC 7435's opportunistic security for
//     the MX's broader one.
package auth

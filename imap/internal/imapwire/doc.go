// Package imapwire is the IMAP server's wire grammar: a streaming reader
// that parses client commands of RFC 3501 (IMAP4rev1), RFC 9051
// (IMAP4rev2) and the extensions the server offers into typed structs,
// and a writer that encodes responses.
//
// The Reader enforces every limit on a command in one place (Limits):
// the bytes of a command outside its literals, each literal and the
// literals of a command in total, APPEND's message, the nesting of
// SEARCH keys and the ranges of a sequence set. A limit is met before
// the bytes past it are read: a synchronizing literal that is too large
// is refused before the continuation request is sent, and a
// non-synchronizing one ends the connection before its data is read
// (RFC 7888). Parsing never recurses deeper than the SEARCH nesting
// limit, so a hostile command costs at most its bounded bytes.
//
// After a syntax error the rest of the command is skipped (its
// non-synchronizing literals included, no continuation request sent for
// a synchronizing one), so the next command is read from its tag.
//
// Mailbox names are decoded from modified UTF-7, or taken as UTF-8 once
// the client has enabled UTF8=ACCEPT or IMAP4rev2 (Reader.UTF8); the
// Writer encodes them the same way.
package imapwire

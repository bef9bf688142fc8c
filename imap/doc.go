// Package imap is mailagent's IMAP server: go-imap's imapserver protocol
// engine over a maildir.Store, with logins checked by package auth.
//
// A Server is shaped like net/http's: an Options struct, Serve on any
// listener, ListenAndServe, Close and a graceful Shutdown. A listener
// serves STARTTLS (port 143 style) or TLS from the first byte
// (Options.ImplicitTLS, port 993 style); passwords are refused before TLS
// unless Options.AllowInsecureAuth says otherwise, and LOGINDISABLED is
// advertised meanwhile.
//
// Several sessions on one mailbox share one view of it: changes made by a
// session, by a delivery in the same process or by another process (found
// by maildir's change notification) reach every session as EXISTS,
// EXPUNGE and FETCH FLAGS updates with correct sequence numbers.
// SELECT and FETCH of flags, sizes, dates and UIDs are answered from
// maildir's index; message files are opened only for content.
//
// SEARCH decodes what it compares: transfer encodings, RFC 2047 words
// and body charsets (those of the WHATWG Encoding Standard; 8-bit text
// without a declared charset is read as Windows-1252), inside attached
// messages too, and matches under Unicode simple case folding. Search
// strings must be UTF-8 (BAD [CLIENTBUG] otherwise); imapserver accepts
// only UTF-8 and US-ASCII as CHARSET and answers others NO [BADCHARSET].
// NOT and OR may nest 64 levels deep; deeper searches are answered
// BAD [LIMIT]. SENTBEFORE, SENTON and SENTSINCE take the Date field's
// date in its own time zone, or INTERNALDATE without a readable Date.
//
// A mailbox name the store refuses (one that could leave the user's
// Maildir: "..", "/", "\", a leading "~" or "#", control characters,
// wildcards) is answered NO [CANNOT] with the reason, by every command
// that takes one; LIST and LSUB patterns match nothing then.
//
// Standards implemented (with go-imap's wire protocol):
//   - RFC 3501, IMAP4rev1, and RFC 9051, IMAP4rev2.
//   - RFC 2177, IDLE; RFC 2342, NAMESPACE; RFC 5161, ENABLE.
//   - RFC 3691, UNSELECT; RFC 4315, UIDPLUS; RFC 6851, MOVE.
//   - RFC 4959, SASL-IR; RFC 4616, PLAIN; the LOGIN SASL mechanism.
//   - RFC 5258, LIST-EXTENDED; RFC 5819, LIST-STATUS; RFC 6154,
//     SPECIAL-USE; RFC 8438, STATUS=SIZE; RFC 7889, APPENDLIMIT.
//   - RFC 4731, ESEARCH, and RFC 5182, SEARCHRES.
//   - RFC 3516, BINARY; RFC 5530, response codes; RFC 7888, LITERAL-.
//   - RFC 2595 and RFC 8314, STARTTLS and implicit TLS.
package imap

// Package imap is mailagent's IMAP server over a maildir.Store, with
// logins checked by package auth. Its protocol engine is its own: a
// streaming command parser and response encoder (internal/imapwire),
// command dispatch with the IMAP states (not authenticated,
// authenticated, selected, logout) and each session's view of its
// selected mailbox. Commands pipelined by a client are read and
// answered in order, their responses written together.
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
// ENVELOPE's subject and message IDs are the header's (unfolded, encoded
// words left for the client, as Dovecot gives them).
//
// SEARCH decodes what it compares: transfer encodings, RFC 2047 words
// and body charsets (those of the WHATWG Encoding Standard; 8-bit text
// without a declared charset is read as Windows-1252), inside attached
// messages too, and matches under Unicode simple case folding.
// SEARCH CHARSET takes UTF-8 and US-ASCII, and the legacy charsets mail
// clients send: ISO-8859-1 to -16, Windows-1250 to -1258, KOI8-R and
// KOI8-U, ISO-2022-JP, Shift_JIS, EUC-JP, EUC-KR, GB2312, GBK, GB18030
// and Big5 (and their aliases, and the other charsets of
// golang.org/x/text but UTF-16 and UTF-32): its strings, quoted or
// literal, are converted to UTF-8 before the search. Other charsets are
// answered NO [BADCHARSET (...)] with that list; strings not valid in
// their charset BAD [CLIENTBUG]. Keys (NOT, OR and parentheses) may
// nest 64 levels deep; deeper searches are answered BAD [LIMIT] as the
// parser reaches the limit, whether logged in or not. Keys not in RFC
// 3501, RFC 9051 or an extension offered (FUZZY, ...) and dates not
// in d-Mon-yyyy are answered BAD [CLIENTBUG]. SENTBEFORE, SENTON and SENTSINCE take
// the Date field's date in its own time zone, or INTERNALDATE without
// a readable Date. YOUNGER and OLDER compare INTERNALDATE to the second
// with the time the command is read; SAVEDBEFORE, SAVEDON and
// SAVEDSINCE compare the UTC date of the save date, and match no
// message whose save date is unknown.
//
// Limits on commands, enforced by the parser in one place: a command's
// bytes outside its literals are at most 50 KiB (over all its lines);
// beyond, BAD [TOOBIG] and the connection closes. A synchronizing
// literal over 4096 bytes, other than APPEND's message, is answered NO
// [TOOBIG] before its continuation request is sent, at any literal of
// the command: the client waits for the request, so the command ends
// there. Non-synchronizing literals (LITERAL+, RFC 7888) are taken up
// to the same limits, APPENDLIMIT for a message; one over them is
// answered BAD [TOOBIG] and the connection closes before any of it is
// read, so its bytes are never taken for commands. A command's literals (APPEND's
// message aside) total at most 64 KiB. A sequence set holds at most
// 10,000 ranges. After a refused command its rest is skipped, its
// non-synchronizing literals included. Command names are ASCII: "ſelect"
// is not SELECT.
//
// Mailbox names are modified UTF-7 (RFC 3501 section 5.1.3) until the
// client enables UTF8=ACCEPT or IMAP4rev2, and UTF-8 after: then "&" is
// itself, in names sent and listed. A name that is not valid in its
// form (modified UTF-7: an unterminated or empty "&" run, ASCII or a
// lone surrogate encoded, two runs in a row) or holds a control
// character is answered BAD [CLIENTBUG], literal or not. Flag lists
// take extra spaces, "( Project_X)", as Dovecot does.
//
// A mailbox name the store refuses (one that could leave the user's
// Maildir: "..", "/", "\", a leading "~" or "#", control characters,
// wildcards) is answered NO [CANNOT] with the reason, by every command
// that takes one; LIST and LSUB patterns match nothing then. The
// store's per-user limits (maildir.Options.MaxFolders, 10,000 folders;
// MaxFolderDepth, 16 levels; 10,000 subscriptions) answer CREATE,
// RENAME and SUBSCRIBE past them NO [LIMIT], with nothing changed.
//
// Standards implemented:
//   - RFC 3501, IMAP4rev1, and RFC 9051, IMAP4rev2, on one connection
//     as the client enables them: after ENABLE IMAP4rev2, SELECT sends
//     no RECENT or UNSEEN and a LIST of the mailbox, SEARCH answers
//     with ESEARCH, and names are UTF-8.
//   - RFC 2177, IDLE; RFC 2342, NAMESPACE (one personal namespace,
//     without a prefix unless Options.NamespacePrefix sets one, as
//     "INBOX."); RFC 5161, ENABLE; RFC 2971, ID; RFC 6855, UTF8=ACCEPT.
//   - RFC 3691, UNSELECT; RFC 4315, UIDPLUS; RFC 6851, MOVE.
//   - RFC 4959, SASL-IR; RFC 4616, PLAIN; the LOGIN SASL mechanism.
//   - RFC 5258, LIST-EXTENDED; RFC 5819, LIST-STATUS; RFC 6154,
//     SPECIAL-USE; RFC 8438, STATUS=SIZE; RFC 7889, APPENDLIMIT.
//   - RFC 6154's CREATE-SPECIAL-USE: CREATE name (USE (\Sent)) gives
//     the folder \Archive, \Drafts, \Junk, \Sent or \Trash, kept in
//     the Maildir (renames carry it, DELETE drops it); \All, \Flagged,
//     unknown or several uses are NO [USEATTR] and create nothing.
//   - RFC 4731, ESEARCH, and RFC 5182, SEARCHRES.
//   - RFC 5255, I18NLEVEL=1: SEARCH compares strings by RFC 5051's
//     i;unicode-casemap (compatibility decomposition, then Unicode
//     case folding), so "Ärger" finds "a\u0308rger" and "ﬁle" finds
//     "FILE".
//   - RFC 5032, WITHIN: SEARCH YOUNGER and OLDER.
//   - RFC 8514, SAVEDATE: FETCH SAVEDATE from maildir's index (NIL
//     when unknown) and SEARCH SAVEDBEFORE, SAVEDON, SAVEDSINCE and
//     SAVEDATESUPPORTED.
//   - RFC 7162, CONDSTORE: modification sequences from maildir's index
//     (HIGHESTMODSEQ at SELECT and in STATUS, FETCH MODSEQ and
//     CHANGEDSINCE answered from the index's changes, STORE
//     UNCHANGEDSINCE with MODIFIED, SEARCH MODSEQ); once enabled, every
//     FETCH response carries MODSEQ. QRESYNC (after ENABLE QRESYNC):
//     SELECT's QRESYNC parameter answers VANISHED (EARLIER) from the
//     index's expunge records (every absent known UID once those are
//     gone) and the changed messages, UID FETCH takes VANISHED, and
//     expunges are reported as VANISHED.
//   - RFC 3516, BINARY; RFC 5530, response codes; RFC 7888, LITERAL+.
//   - RFC 3502, MULTIAPPEND: the messages of one APPEND are stored all
//     or none; at most 1,000 of them, of ten times APPENDLIMIT together,
//     each refused before it is asked for.
//   - RFC 4469, CATENATE, with RFC 5092 IMAP URLs and RFC 5550's
//     URL-PARTIAL: a message built of TEXT literals and URLs naming a
//     message, a section or a range of one in the user's own mailboxes
//     (relative to the server, "/INBOX/;UID=5", or to the selected
//     mailbox, ";UID=5", or absolute naming the user and
//     Options.Hostname or the address the client reached); any other URL, URLAUTH among
//     them, is NO [BADURL] and nothing is stored. The parts count
//     together against APPENDLIMIT, each before it is read.
//   - RFC 8508, REPLACE and UID REPLACE: the new message is stored
//     before the old one is expunged, and taken back if that fails;
//     APPENDUID comes untagged, then EXISTS and EXPUNGE (VANISHED under
//     QRESYNC).
//   - RFC 9586, UIDONLY: after ENABLE UIDONLY, FETCH, STORE, SEARCH,
//     SORT, THREAD, COPY, MOVE and REPLACE without UID, search keys of
//     sequence numbers and QRESYNC's known sequence numbers are BAD
//     [UIDREQUIRED]; FETCH responses are UIDFETCH (the UID item only
//     when asked for), expunges VANISHED, and SELECT sends no UNSEEN.
//   - RFC 5256, SORT (base subjects as its section 2.1 says, DATE from
//     the Date field or INTERNALDATE); RFC 5957, SORT=DISPLAY; RFC
//     5267, ESORT. Keys read each matching message's header. THREAD
//     (RFC 5256) by ORDEREDSUBJECT, REFERENCES (without its grouping
//     of threads by subject, step 5) and REFS (threads ordered by their
//     latest message).
//   - RFC 8474, OBJECTID: MAILBOXID at CREATE, SELECT and in STATUS,
//     FETCH EMAILID from maildir's index, THREADID NIL (no threads are
//     kept).
//   - RFC 9208, QUOTA: one root, "", with maildirsize's limits (which
//     the directory sets at login) and usage; STATUS DELETED-STORAGE;
//     SETQUOTA is the administrator's (NO [NOPERM]).
//   - RFC 8970, PREVIEW, and Dovecot's older SNIPPET=FUZZY and
//     PREVIEW=FUZZY spellings (FETCH SNIPPET (FUZZY), PREVIEW (FUZZY),
//     answered "(FUZZY text)"): up to 256 characters of the first
//     text/plain or text/html part that is not an attachment (text/plain
//     among alternatives), transfer encoding and charset decoded, HTML
//     markup and quoted lines left out, white space collapsed, from at
//     most 32 KiB of the part. A preview is made once and kept in the
//     folder's cache with the MIME structure; PREVIEW (LAZY) answers
//     NIL for one not made yet and has it made in the background (two
//     workers per server, a queue of 1024 messages, stopped by Close),
//     so that a later LAZY request gets it from the cache.
//   - RFC 5267, CONTEXT=SEARCH and CONTEXT=SORT: SEARCH or SORT RETURN
//     (UPDATE) keeps up to 16 searches per session up to date with
//     ESEARCH ADDTO and REMOVEFROM (an expunged message by the number
//     the client knows, before its EXPUNGE) until CANCELUPDATE or the
//     mailbox is closed; beyond 16, "* NO [NOUPDATE tag]". A SEARCH's
//     positions are 0 (its results are in mailbox order), a SORT's
//     ADDTO gives each message's position in sort order. PARTIAL
//     windows of SEARCH and SORT results, with RFC 9394's ranges
//     counted from the end ("-1:-50"); PARTIAL with ALL is BAD.
//   - RFC 5465, NOTIFY: MessageNew, MessageExpunge and FlagChange of
//     the selected mailbox (selected, selected-delayed; MessageNew's
//     FETCH items sent after EXISTS) and of others (inboxes, personal,
//     subscribed, subtree, mailboxes: an untagged STATUS with MESSAGES,
//     UIDNEXT, UIDVALIDITY, and for FlagChange HIGHESTMODSEQ once
//     CONDSTORE is on, else UNSEEN), sent as they happen, between commands and
//     during IDLE. Other mailboxes are watched through maildir's change
//     notification, so another process's delivery is seen; a filter
//     covers the mailboxes existing at NOTIFY SET and those created or
//     renamed into it later, at most 1,000 (NO [LIMIT] beyond).
//     MailboxName and SubscriptionChange: LIST responses for this
//     server's other sessions of the user (CREATE, DELETE as
//     \NonExistent, RENAME with OLDNAME, SUBSCRIBE, UNSUBSCRIBE) and
//     for changes made outside it (a folder made by mkdir, by Dovecot
//     or by another node; a rename there is a deletion and a
//     creation), which maildir's WatchFolders reports (inotify and the
//     poll). SUBTREE compares names as the client knows them, so with
//     NamespacePrefix "INBOX." SUBTREE INBOX covers every folder.
//     AnnotationChange, MailboxMetadataChange and ServerMetadataChange
//     (no METADATA here) are NO [BADEVENT ...].
//   - RFC 2595 and RFC 8314, STARTTLS and implicit TLS. RFC 4978's
//     COMPRESS=DEFLATE, advertised after login until compression is
//     on; a client's partial flushes (zlib's Z_PARTIAL_FLUSH, as
//     mbsync sends) are answered at once (see compress.go).
package imap

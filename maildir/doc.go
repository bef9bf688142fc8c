// Package maildir is mailagent's mail storage: Maildir++ folders on disk in
// the layout and file formats Dovecot 2.3 uses, so that a live Dovecot
// installation can be served by mailagent (or handed back) without any
// client downloading its mail again.
//
// A Store is rooted at a base directory and shared by every server in a
// process (SMTP/LMTP delivery, IMAP, POP3): it owns the group commit of
// directory fsyncs and the in-memory state of open folders, so a change
// made through one Maildir handle is seen by every other handle at once.
// Changes made by other processes (Dovecot, a second mailagent node, a
// manual mv) are picked up by Sync and by watchers within PollInterval.
// Watchers get a folder's changes in the order they were applied
// (Event.Seq); the Store's Close ends every watch.
//
// On disk, per user Maildir:
//
//	Maildir/{tmp,new,cur}          INBOX
//	Maildir/.Sent/{tmp,new,cur}    folder "Sent"; "a.b" is ".a.b"
//	Maildir/.Entw&APw-rfe/         folder "Entwürfe" (modified UTF-7)
//	<folder>/dovecot-uidlist       UIDs, version 3, dot-locked
//	<folder>/dovecot-keywords      keyword names for letters a–z
//	<folder>/mailagent.index       mailagent's folder index: the listing,
//	                               modseqs, expunge records (index.go)
//	<folder>/mailagent.index.log   changes appended since (indexlog.go)
//	<folder>/mailagent.cache       data derived from message files: the
//	                               MIME structure (cache.go), the header
//	                               fields SORT and THREAD compare
//	                               (fieldcache.go)
//	Maildir/subscriptions          Dovecot's subscription file, version 2
//	Maildir/mailagent-special-use  special uses given at CREATE (specialuse.go)
//	Maildir/maildirsize            Maildir++ quota
//	Maildir/mailagent-session.lock flock(2) target of Maildir.Lock (POP3)
//
// Message file names are "<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<vsize>"
// with ":2,<flags>" appended in cur/, as Dovecot names them.
//
// A delivery is written to tmp/, fsynced, renamed into new/ and the
// directory fsynced before Deliver returns; on Linux file systems with
// O_TMPFILE it is written to an unnamed file in new/ instead, fsynced,
// and linked under its name there (no tmp/ entry, no rename).
// Deliver is Stage (write, fsync, charge the quota; nothing visible)
// then CommitAll (link, fsync the directory); a message for several
// mailboxes is staged for each and committed with one CommitAll, which
// names all the copies or none. CheckQuota asks, before a delivery,
// whether a mailbox has room.
// Concurrent deliveries share directory fsyncs. UIDs are assigned under dovecot-uidlist.lock, by the
// first sync that sees a new file (or at once by Append, Copy and Move).
// Opening a folder reads mailagent.index, replays mailagent.index.log
// and stats two directories; only a changed directory is read again, and
// then without a stat per known file. A change made here (a flag change,
// an expunge, an append) takes the directories' new stamps without a
// listing; because another writer's change in the same tick of the clock
// that stamps directories leaves the same mtime, the folder is listed once
// more when that tick is surely over: 50 ms after a stamp with a
// sub-second part (ext4, xfs, btrfs, tmpfs, NFS from those), 1 s after a
// whole-second one (the dirty window, window.go). That listing runs in the
// background, out of the folder's lock, and compares a digest of the
// names with the state's: no command waits for it, a hidden change is
// taken in and told to watchers like any other, and a sync lists by
// itself only when no check is on its way (a folder just opened) or the
// check is a second late. Folder.Select gives what opening a folder for a
// session needs (UIDs, first unseen, Recent) in a few words per message,
// where Snapshot builds every Message.
//
// Every message has a modification sequence (RFC 7162), raised by every
// change: an arrival, a flag change through this package, or one made by
// someone else and noticed by a sync. The index and its log are written
// only under dovecot-uidlist.lock, after taking in what other writers
// (processes, nodes) stored, so all of them agree on the modseqs and none
// goes back. Arrivals and expunges are fsynced before they are reported;
// a flag change (a rename, as in Dovecot, and one log record) is not:
// like Dovecot with mail_fsync=optimized, one made in the last seconds
// before a power loss may be lost, but its modseq is never handed out
// again: records written without an fsync follow a boot mark that is
// fsynced, and after a reboot the folder's highest modseq rises above
// the mark's ceiling (flagdurability.go). Folder.Cached keeps data
// derived from a message file (IMAP's MIME structure) in
// mailagent.cache, so a message is parsed once; Folder.CachedFields does
// the same for many messages at once (the header fields IMAP's SORT and
// THREAD compare), in one read of the file, and Folder.DecodedFields
// keeps those fields decoded in memory with the folder's shared state
// while the Maildir is open (bounded by Options.HeldFieldsMemory), so a
// SORT or THREAD over a large folder reads no file at all.
//
// Standards and formats implemented:
//   - Maildir (https://cr.yp.to/proto/maildir.html) and Maildir++ folders
//     and quota (Courier's maildirquota, "maildirsize").
//   - RFC 3501 §5.1.3 / RFC 9051 §5.1.3: modified UTF-7 folder names.
//   - RFC 3501 / RFC 9051: flags, keywords, UIDVALIDITY and UIDNEXT semantics.
//   - RFC 4315 (UIDPLUS): UIDs assigned by append, copy and move.
//   - RFC 7162 (CONDSTORE, QRESYNC): a modseq per message, the folder's
//     HIGHESTMODSEQ, changes and expunges since a modseq, and a
//     conditional flag store (see modseq.go).
//   - RFC 8474 (OBJECTID): Message.EmailID and Status.MailboxID.
//   - RFC 8514 (SAVEDATE): Message.SaveDate.
//   - RFC 6154 (SPECIAL-USE): \Sent \Drafts \Trash \Junk \Archive folders.
//   - RFC 9208 (QUOTA): storage and message-count usage and limits.
//   - Dovecot's dovecot-uidlist (version 3), dovecot-keywords,
//     subscriptions (version 2) and dot-lock files.
package maildir

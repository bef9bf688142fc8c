// Package queue is mailagent's durable outbound mail queue: it accepts
// messages as a mail.Target, keeps them in a spool directory until every
// recipient is delivered or has failed for good, retries temporary
// failures with exponential backoff, and returns delivery status
// notifications to the sender.
//
// Each message is stored once, as the exact bytes received (a DKIM
// signature made before queueing stays valid), beside a small metadata
// file with the envelope and per-recipient state. Both are written to a
// temporary file, fsynced and renamed into place, and the directory is
// fsynced before Commit returns, so a message the submitter was told is
// accepted survives kill -9 and power loss, and a half-written one is
// never seen. Only the schedule (message id and next attempt time) is
// kept in memory, so the spool can hold far more messages than memory.
//
// A queue owns its spool by an flock on the spool's lock file, which
// the kernel drops when the process dies: New waits (Options.LockWait)
// or fails with ErrLocked while another queue runs on it. Nodes whose
// spools sit on shared storage list each other's (Options.Peers): a
// spool whose lock is free has its messages moved into a running
// node's spool (Adopt), so a dead node's acknowledged mail is delivered
// without it; a message whose delivery it had begun may go out twice,
// as RFC 1047 describes, never be lost.
//
// Delivery goes through a Courier (normally an outbound.Client),
// recipients grouped by next hop so that one connection carries all
// recipients of a message for that hop and, in turn, the other messages
// waiting for it; limits bound the connections per next hop and overall,
// and the messages in delivery.
//
// Standards implemented:
//   - RFC 5321 §4.5.4.1: retry strategy and giving up (default 5 days)
//   - RFC 3464: multipart/report delivery status notifications, with
//     RFC 3463 status codes and RFC 6533 utf-8 address types
//   - RFC 3461: NOTIFY selects the failure and delay notifications of
//     each recipient, ORCPT is written back as Original-Recipient and
//     ENVID as Original-Envelope-Id, RET=FULL returns the whole message
//     (up to 50,000 bytes, else its header); a next hop that offers DSN
//     is given RET, ENVID, NOTIFY and ORCPT and reports on its own, and
//     the recipients with NOTIFY=SUCCESS handed to one that does not are
//     named in one notice, Action: relayed (§5.2.2)
//   - RFC 6522: the multipart/report container
//   - RFC 3834: Auto-Submitted on generated notifications
//   - RFC 5321 §4.5.5 and §6.1: no notification for the null reverse
//     path, and notifications sent from it, so bounces cannot loop
package queue

// Package router sends each recipient of a message where it belongs: a
// local mailbox, a forwarding's destinations, a transport-table next hop
// (LMTP or SMTP) or the outbound queue, resolving addresses through the
// directory (package store) and keeping the relay policy.
//
// A Router is a mail.Target, normally the Target of the servers in
// package smtp. It is apart from them because routing is the same
// whatever role received the message (MX, submission, LMTP), and because
// the queue's bounces and a program's own mail go through it without any
// server; apart from local delivery (smtp/local) because where a message
// goes and how a Maildir stores it change for different reasons. It
// knows its destinations only as mail.Targets.
package router

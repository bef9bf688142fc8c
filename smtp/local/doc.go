// Package local delivers messages into local users' Maildirs, as
// Dovecot's LDA and LMTP do: Delivery is the mail.Target that checks
// each user at RCPT, writes and fsyncs every copy without naming it and
// names them all on Commit (all or nothing), files spam in the user's
// Junk folder, and runs the user's Sieve scripts (SieveFilter: fileinto,
// flags, vacation replies through an outbound mail.Target). LearnQueue
// teaches a spam filter (rspamd) from a user's moves into and out of
// Junk.
//
// It is apart from the servers (package smtp) and the router
// (smtp/router) because storing a message is the same whichever of them
// handed it over, and because Sieve and spam handling grow here without
// touching the protocol code.
//
// Standards implemented: RFC 5228 Sieve (through maildir/sieve) with
// fileinto, imap4flags (RFC 5232) and vacation (RFC 5230); RFC 5321
// section 4.4 Return-Path; Delivered-To as Postfix and Dovecot write it.
package local

// Package sieve is a Sieve mail-filtering interpreter (RFC 5228) with the
// extensions Dovecot's Pigeonhole users rely on: fileinto, reject and
// ereject (RFC 5429), envelope, imap4flags (RFC 5232), body (RFC 5173),
// variables (RFC 5229), vacation (RFC 5230), subaddress (RFC 5233), copy
// (RFC 3894), relational (RFC 5231), regex (draft-ietf-sieve-regex),
// date and index (RFC 5260), editheader (RFC 5293), mailbox (RFC 5490) and
// include (RFC 6609).
//
// Parse checks a script (syntax, require, arguments) within Limits and
// reports errors with line and column. Run interprets it against a Message
// and an Envelope and returns the actions to take — keep, fileinto with
// flags, redirect, reject, discard, vacation, and the edited header — without
// performing any: delivery, the queue and vacation memory belong to the
// caller. The package imports nothing of mailagent's servers.
//
// Decisions are compared with Pigeonhole's sieve-test over a corpus of
// scripts and messages (pigeonhole_test.go, testdata/pigeonhole.golden).
package sieve

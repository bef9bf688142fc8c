// Package mail holds the definitions every part of mailagent that
// carries a message shares: the Envelope, the Body, the two-phase
// delivery contract (Target, Delivery, PartialDelivery, Withdrawer,
// Bouncer), the typed SMTP reply (Error), the authentication results and
// the check and filter API (Verdict, ConnectChecker, MailChecker,
// MessageChecker, Signer, Filter) that the servers run.
//
// The SMTP, submission and LMTP servers (package smtp), the router
// (smtp/router), local delivery (smtp/local), the queue (smtp/queue), the
// outbound client (smtp/outbound) and a program's own targets and filters
// all speak these types, so none of them needs to import another to hand
// a message on. The package imports nothing else of mailagent and does no
// I/O of its own: it sits below every package that moves mail.
//
// It is named for what its types describe, the mail in transit, so that
// call sites read as such: mail.Envelope, mail.Target, mail.Error. A file
// that also needs the standard library's net/mail imports that one under
// another name (netmail).
package mail

// Package smtp implements mailagent's SMTP roles as go-smtp backends: the
// mail exchanger (port 25), the submission agent (587 with STARTTLS, 465
// with implicit TLS) and the LMTP server, and the router that sends each
// recipient to a Maildir, a forwarding, a transport or the outbound queue.
package smtp

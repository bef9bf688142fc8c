// Package connlimit bounds concurrent connections, in total and per
// client network; mailagent's SMTP, POP3 and IMAP servers use it. One
// Limiter may count the connections of many servers (a Counter in their
// Options), which is how a process such as examples/fullserver holds one
// limit over all its listeners. Refuse gives a connection over a limit
// its protocol's busy reply, over TLS where the listener speaks TLS from
// the first byte.
//
// A connection counts against its client network: the IPv4 address, or
// the /64 an IPv6 address lies in. A /64 is the smallest network an IPv6
// host or site is normally given (RFC 4291 section 2.5.1 puts the
// interface identifier in its low 64 bits; RFC 6177 assigns end sites
// /48 to /64), and the host picks its own addresses inside it, privacy
// addresses changing on their own (RFC 8981). Counting by address would
// let one client open a fresh address for every connection and take as
// much of the server as it likes; counting by /64 gives it the share of
// one IPv4 address.
//
// Connections without an IP address, such as those of a Unix-domain
// socket, whose peers are local processes, count only against the total.
//
// The package speaks no protocol; the RFCs above are why the client
// network is the unit counted.
package connlimit

// Package dnsauth holds mailagent's DNS access and sender authentication.
//
// Every DNS lookup in mailagent goes through the Resolver interface, which
// *net.Resolver satisfies; MockResolver answers from maps for tests.
package dnsauth

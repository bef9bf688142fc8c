package outbound_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/internal/examplet"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

// A Client delivers to a domain's MX hosts, with STARTTLS when offered.
// Here the MX is a recording peer on loopback and DNS a MockResolver; in
// a program, leave Resolver and Port at their defaults (the system
// resolver, port 25).
func Example() {
	t := &examplet.T{} // a test passes its *testing.T
	defer t.Done()
	peer := outboundtest.Start(t, outboundtest.Options{Domain: "mx.example.net"})
	dns := &dnsauth.MockResolver{}
	dns.AddMX("example.net", "mx.example.net", 10)
	dns.AddIP("mx.example.net", net.ParseIP("127.0.0.1"))

	c, err := outbound.New(outbound.Options{Hostname: "mail.example.org", Resolver: dns, Port: peer.Port})
	if err != nil {
		log.Fatal(err)
	}
	hop, _ := outbound.ParseNextHop("example.net") // as the transport table writes it
	results := c.Deliver(context.Background(), hop, &outbound.Message{
		From:       "alice@example.org",
		Recipients: []string{"bob@example.net"},
		Body:       mail.BytesBody([]byte("Subject: hi\r\n\r\nHello.\r\n")),
	})
	for _, r := range results {
		fmt.Println(r.Recipient, r.Err == nil, r.Remote)
	}
	m := peer.Messages()[0]
	fmt.Println(m.Helo, m.From, m.To)
	// Output:
	// bob@example.net true mx.example.net[127.0.0.1]
	// mail.example.org alice@example.org [bob@example.net]
}

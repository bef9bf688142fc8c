package queue_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/internal/examplet"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
	"github.com/mailagent/mailagent/smtp/queue"
)

// A durable queue in front of the outbound client: Enqueue returns once
// the message is in the spool (fsynced), and Run delivers it, retrying with
// backoff and bouncing what fails for good. A queue is also a mail.Target:
// give it to router.Options.Queue to forward what the MX and submission
// accept for other domains. Here the remote MX is a recording peer.
func Example() {
	t := &examplet.T{} // a test passes its *testing.T
	defer t.Done()
	peer := outboundtest.Start(t, outboundtest.Options{})
	dns := &dnsauth.MockResolver{}
	dns.AddMX("example.net", "mx.example.net", 10)
	dns.AddIP("mx.example.net", net.ParseIP("127.0.0.1"))
	client, _ := outbound.New(outbound.Options{Hostname: "mail.example.org", Resolver: dns, Port: peer.Port})

	q, err := queue.New(queue.Options{Dir: t.TempDir(), Courier: queue.Outbound(client), Hostname: "mail.example.org"})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	env := &mail.Envelope{From: "alice@example.org", Recipients: []string{"bob@example.net"}}
	if _, err := q.Enqueue(ctx, env, mail.BytesBody([]byte("Subject: hi\r\n\r\nHello.\r\n"))); err != nil {
		log.Fatal(err)
	}
	fmt.Println("queued:", q.Len())

	// A program runs go q.Run(ctx) and q.Shutdown(ctx) at exit; RunDue
	// makes one pass and waits for it.
	if err := q.RunDue(ctx); err != nil {
		log.Fatal(err)
	}
	m := peer.Messages()[0]
	fmt.Println("delivered:", m.From, m.To, strings.Contains(string(m.Data), "Subject: hi"))
	fmt.Println("queued:", q.Len())
	// Output:
	// queued: 1
	// delivered: alice@example.org [bob@example.net] true
	// queued: 0
}

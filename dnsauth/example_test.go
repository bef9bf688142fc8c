package dnsauth_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"

	"github.com/mailagent/mailagent/dnsauth"
)

// A domain publishes the records Records lists (here into a MockResolver;
// in production into its zone), signs what it sends, and a receiving MX
// checks SPF, DKIM and DMARC and writes Authentication-Results.
func Example() {
	ctx := context.Background()
	key, err := dnsauth.GenerateDKIMKey("example.org", "mail2026", dnsauth.DKIMAlgoEd25519)
	if err != nil {
		log.Fatal(err)
	}
	hostIP := net.ParseIP("192.0.2.25")
	recs, err := dnsauth.Records(dnsauth.DomainSetup{
		Domain: "example.org", MailHost: "mail.example.org",
		IPs: []net.IP{hostIP}, DKIM: []*dnsauth.DKIMKey{key},
	})
	if err != nil {
		log.Fatal(err)
	}
	dns := &dnsauth.MockResolver{}
	for _, r := range recs {
		dns.AddRecord(r)
	}

	// Sending side: prepend the DKIM-Signature fields Sign returns.
	msg := "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello.\r\n"
	sig, err := dnsauth.NewSigner([]*dnsauth.DKIMKey{key}).Sign(ctx, strings.NewReader(msg))
	if err != nil {
		log.Fatal(err)
	}
	msg = sig + msg

	// Receiving side: SPF at MAIL FROM, DKIM and DMARC after DATA.
	spf := dnsauth.CheckSPF(ctx, nil, dns, hostIP, "mail.example.org", "alice@example.org")
	res, err := dnsauth.VerifyMessage(ctx, dns, strings.NewReader(msg), &spf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("spf:", spf.Status, "dkim:", res.DKIM[0].Status, res.DKIM[0].Algorithm, "dmarc:", res.DMARC.Status)
	ar := dnsauth.AuthResults{SPF: &spf, DKIM: res.DKIM, DKIMChecked: true, DMARC: res.DMARC}
	fmt.Println(strings.HasPrefix(ar.Header("mx.example.net"), "Authentication-Results: mx.example.net;"))
	// Output:
	// spf: pass dkim: pass ed25519-sha256 dmarc: pass
	// true
}

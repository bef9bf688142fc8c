package smtp

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/dnsauth"
)

// TestSenderAuth wires dnsauth's checks into the MX through the hooks,
// over a mock DNS.
func TestSenderAuth(t *testing.T) {
	st := newTestStack(t)
	dns := &dnsauth.MockResolver{
		TXT: map[string][]string{
			"far.example":         {"v=spf1 ip4:127.0.0.1 -all"},
			"_dmarc.far.example":  {"v=DMARC1; p=reject"},
			"quar.example":        {"v=spf1 -all"},
			"_dmarc.quar.example": {"v=DMARC1; p=quarantine"},
			"spf-fail.example":    {"v=spf1 -all"},
		},
		PTR: map[string][]string{"127.0.0.1": {"client.far.example."}},
		IP:  map[string][]net.IP{"client.far.example": {net.ParseIP("127.0.0.1")}},
	}
	sa := &SenderAuth{Resolver: dns, RejectSPFFail: true}
	o := st.options(MX)
	o.Checks = sa.Checks()
	addr, _ := st.serve(o)
	msg := func(from, subject string) string {
		return fmt.Sprintf("%q", "From: "+from+"\r\nSubject: "+subject+"\r\n\r\nx\r\n.\r\n")
	}
	dial(t, "tcp", addr).run(greet + `
		C: MAIL FROM:<x@spf-fail.example>
		S: 550 5.7.23
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: DATA
		S: 354
		R: ` + msg("sender@far.example", "aligned") + `
		S: 250
		C: MAIL FROM:<bounce@other.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: DATA
		S: 354
		R: ` + msg("ceo@far.example", "forged") + `
		S: 550 5.7.1
		C: MAIL FROM:<bounce@other.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: DATA
		S: 354
		R: ` + msg("news@quar.example", "doubtful") + `
		S: 250`)
	inbox := st.messages("alice@local.example", "")
	if len(inbox) != 1 || !strings.Contains(inbox[0], "Subject: aligned") {
		t.Fatalf("INBOX: %q", inbox)
	}
	hdr, _, _ := strings.Cut(inbox[0], "\r\nReceived: ")
	for _, want := range []string{"Authentication-Results: mx.test", "iprev=pass", "spf=pass", "dmarc=pass"} {
		if !strings.Contains(hdr, want) {
			t.Errorf("header lacks %q:\n%s", want, hdr)
		}
	}
	junk := st.messages("alice@local.example", "Junk")
	if len(junk) != 1 || !strings.Contains(junk[0], "Subject: doubtful") || !strings.Contains(junk[0], "dmarc=fail") {
		t.Fatalf("Junk: %q", junk)
	}
}

// TestDKIMSigner signs submitted mail with dnsauth's signer, with an
// Ed25519 and an RSA key as fullserver does, and checks both signatures
// with dnsauth's verifier.
func TestDKIMSigner(t *testing.T) {
	st := newTestStack(t)
	var keys []*dnsauth.DKIMKey
	txt := map[string][]string{}
	for sel, algo := range map[string]string{"ed": dnsauth.DKIMAlgoEd25519, "rsa": dnsauth.DKIMAlgoRSA} {
		key, err := dnsauth.GenerateDKIMKey("local.example", sel, algo)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := key.Record()
		if err != nil {
			t.Fatal(err)
		}
		keys, txt[rec.Name] = append(keys, key), []string{rec.Value}
	}
	o := st.options(Submission)
	o.Signer = DKIMSigner{Signer: dnsauth.NewSigner(keys)}
	// Alice may send as an address of a domain without keys.
	o.SendAs = map[string][]string{"alice@local.example": {"alice@elsewhere.example"}}
	addr, _ := st.serve(o)
	dial(t, "tcp", addr).run(tlsLogin("alice@local.example") + `
		C: MAIL FROM:<alice@local.example>
		S: 250
		C: RCPT TO:<bob@local.example>
		S: 250
		C: DATA
		S: 354
		R: "From: alice@local.example\r\nSubject: signed\r\n\r\nbody\r\n.\r\n"
		S: 250
		C: MAIL FROM:<alice@local.example>
		S: 250
		C: RCPT TO:<bob@local.example>
		S: 250
		C: DATA
		S: 354
		R: "From: alice@elsewhere.example\r\nSubject: no key\r\n\r\nbody\r\n.\r\n"
		S: 250`)
	got := st.messages("bob@local.example", "")
	if len(got) != 2 {
		t.Fatalf("bob has %d messages", len(got))
	}
	dns := &dnsauth.MockResolver{TXT: txt}
	for _, m := range got {
		// Verify what a receiver gets: the message as it left, from
		// the signature down.
		i := strings.Index(m, "DKIM-Signature: ")
		signed := strings.Contains(m, "Subject: signed")
		if signed != (i >= 0) {
			t.Fatalf("signature presence wrong:\n%s", m)
		}
		if !signed {
			continue
		}
		res, err := dnsauth.VerifyDKIM(context.Background(), dns, strings.NewReader(m[i:]))
		if err != nil || len(res) != 2 || res[0].Status != dnsauth.DKIMPass || res[1].Status != dnsauth.DKIMPass {
			t.Fatalf("verification: %+v %v\n%s", res, err, m)
		}
	}
}

func TestSenderAuthRequirePTR(t *testing.T) {
	st := newTestStack(t)
	dns := &dnsauth.MockResolver{}
	o := st.options(MX)
	o.Checks = (&SenderAuth{Resolver: dns, RequirePTR: true}).Checks()
	addr, _ := st.serve(o)
	dial(t, "tcp", addr).run(`
		S: 220
		C: EHLO client.far.example
		S: 550 5.7.25
		CLOSED`)
	dns.Lock()
	dns.Fail = map[string]error{"127.0.0.1": dnsauth.NewTempError("127.0.0.1")}
	dns.Unlock()
	dial(t, "tcp", addr).run(`
		S: 220
		C: EHLO client.far.example
		S: 450 4.7.25
		CLOSED`)
}

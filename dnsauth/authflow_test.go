package dnsauth

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
)

// receive runs the checks an MX makes on a message, in the order of an
// SMTP session, and returns the Authentication-Results field it would
// prepend and the DMARC verdict.
func receive(t *testing.T, r Resolver, ip net.IP, helo, mailFrom string, msg []byte) (string, DMARCResult) {
	t.Helper()
	ctx := context.Background()
	iprev := CheckIPRev(ctx, r, ip, helo)
	spf := CheckSPF(ctx, nil, r, ip, helo, mailFrom)
	stripped, _, err := StripAuthResults(bytes.NewReader(msg), "mx.b.test")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(stripped)
	dkim, err := VerifyDKIM(ctx, r, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := readHeader(bufioReader(data))
	from, err := FromDomain(hdr)
	if err != nil {
		t.Fatal(err)
	}
	dmarc := EvaluateDMARC(ctx, r, from, spf, dkim)
	ar := AuthResults{IPRev: &iprev, SPF: &spf, DKIM: dkim, DKIMChecked: true, DMARC: &dmarc}
	return ar.Header("mx.b.test"), dmarc
}

// Mail from a.test, signed by its submission server with the keys whose
// records Records produced, reaches b.test's MX from a.test's address.
func TestAuthFlowSignedMailPasses(t *testing.T) {
	ctx := context.Background()
	ip := net.ParseIP("192.0.2.10")
	s := DomainSetup{Domain: "a.test", MailHost: "mail.a.test", IPs: []net.IP{ip}}
	rsaKey, err := GenerateDKIMKey("a.test", "rsa1", DKIMAlgoRSA)
	if err != nil {
		t.Fatal(err)
	}
	edKey, err := GenerateDKIMKey("a.test", "ed1", DKIMAlgoEd25519)
	if err != nil {
		t.Fatal(err)
	}
	s.DKIM = []*DKIMKey{rsaKey, edKey}
	recs, err := Records(s)
	if err != nil {
		t.Fatal(err)
	}
	dns := &MockResolver{}
	publish(t, dns, recs)
	// bank.test protects its name with p=reject.
	dns.AddTXT("_dmarc.bank.test", "v=DMARC1; p=reject")
	dns.AddTXT("bank.test", "v=spf1 -all")

	signer := NewSigner(s.DKIM)
	msg := crlf("From: Joe <joe@a.test>\nTo: sue@b.test\nSubject: dinner\nDate: Wed, 25 Nov 2026 10:00:00 +0000\nMessage-ID: <1@a.test>\n\nAre you hungry?\n")
	// A sender-supplied result claiming our authserv-id must not survive.
	forgedAR := "Authentication-Results: mx.b.test; dkim=pass header.d=bank.test\r\n"
	otherAR := "Authentication-Results: elsewhere.test; spf=pass smtp.mailfrom=x@y.test\r\n"
	sig, err := signer.Sign(ctx, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	header, dmarc := receive(t, dns, ip, "mail.a.test", "joe@a.test", []byte(forgedAR+otherAR+sig+msg))
	for _, want := range []string{"iprev=pass", "spf=pass smtp.mailfrom=joe@a.test", "dkim=pass header.d=a.test header.s=rsa1", "dkim=pass header.d=a.test header.s=ed1", "dmarc=pass", "header.from=a.test"} {
		if !strings.Contains(header, want) {
			t.Errorf("Authentication-Results lacks %q:\n%s", want, header)
		}
	}
	if strings.Contains(header, "bank.test") {
		t.Errorf("forged result leaked:\n%s", header)
	}
	id, results, err := authres.Parse(strings.TrimPrefix(strings.ReplaceAll(strings.TrimSpace(header), "\r\n\t", " "), "Authentication-Results: "))
	if err != nil || id != "mx.b.test" || len(results) != 5 {
		t.Errorf("authres.Parse: %q, %d results, %v", id, len(results), err)
	}
	if dmarc.Action(DMARCFollowPolicy) != DMARCAccept {
		t.Errorf("action %v, want accept", dmarc.Action(DMARCFollowPolicy))
	}

	// The same message with a forged From domain: SPF and DKIM still pass
	// for a.test, but neither aligns with bank.test.
	forged := strings.Replace(sig+msg, "From: Joe <joe@a.test>", "From: Bank <ceo@bank.test>", 1)
	header, dmarc = receive(t, dns, ip, "mail.a.test", "joe@a.test", []byte(forged))
	if dmarc.Status != DMARCFail || dmarc.Policy != DMARCPolicyReject || dmarc.Disposition != DMARCPolicyReject {
		t.Fatalf("forged From: %+v", dmarc)
	}
	if !strings.Contains(header, "dmarc=fail (p=reject dis=reject) header.from=bank.test") {
		t.Errorf("Authentication-Results:\n%s", header)
	}
	if dmarc.Action(DMARCFollowPolicy) != DMARCReject || dmarc.Action(DMARCRecordOnly) != DMARCAccept || dmarc.Action(DMARCJunkOnFail) != DMARCJunk {
		t.Errorf("actions: follow %v, record %v, junk %v", dmarc.Action(DMARCFollowPolicy), dmarc.Action(DMARCRecordOnly), dmarc.Action(DMARCJunkOnFail))
	}
	if !strings.HasPrefix(dmarc.RejectText(), "5.7.1 ") {
		t.Errorf("reject text %q", dmarc.RejectText())
	}
}

func TestStripAuthResults(t *testing.T) {
	msg := "Received: x\r\nAuthentication-Results: (comment) MX.B.test;\r\n spf=pass\r\nauthentication-results: mx.b.test.evil; spf=pass\r\nSubject: s\r\n\r\nAuthentication-Results: mx.b.test; body line\r\n"
	out, n, err := StripAuthResults(strings.NewReader(msg), "mx.b.test")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out)
	want := "Received: x\r\nauthentication-results: mx.b.test.evil; spf=pass\r\nSubject: s\r\n\r\nAuthentication-Results: mx.b.test; body line\r\n"
	if n != 1 || string(got) != want {
		t.Errorf("removed %d:\n%q\nwant\n%q", n, got, want)
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// A header line longer than the read buffer whose CRLF falls across the
// buffer's end does not end the header early.
func TestReadHeaderLongLine(t *testing.T) {
	long := "X-Long: " + strings.Repeat("a", 4096-len("X-Long: ")-1) + "\r\n"
	msg := long + "From: a@b.test\r\n\r\nbody\r\n"
	hdr, err := readHeader(bufio.NewReader(strings.NewReader(msg)))
	if err != nil || string(hdr) != long+"From: a@b.test\r\n\r\n" {
		t.Fatalf("header %q, %v", hdr, err)
	}
}

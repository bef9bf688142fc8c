package dnsauth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// The signed example of RFC 8463 appendix A.3: one Ed25519 and one RSA
// signature over the message of RFC 6376 appendix A, with the keys of
// appendix A.2.
var rfc8463Message = crlf(`DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :
 subject : date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=test; t=1528637909; h=from : to : subject :
 date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3
 DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz
 dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=
` + rfc6376Message)

var rfc6376Message = `From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.
`

const (
	rfc8463EdSeed    = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
	rfc8463EdRecord  = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	rfc8463RSARecord = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/" +
		"J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
)

func rfc8463Resolver() *MockResolver {
	m := &MockResolver{}
	m.AddTXT("brisbane._domainkey.football.example.com", rfc8463EdRecord)
	m.AddTXT("test._domainkey.football.example.com", rfc8463RSARecord)
	return m
}

func TestVerifyDKIMRFC8463(t *testing.T) {
	res, err := VerifyDKIM(context.Background(), rfc8463Resolver(), strings.NewReader(rfc8463Message))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("got %d results, want 2", len(res))
	}
	want := []struct{ sel, algo string }{{"brisbane", "ed25519-sha256"}, {"test", "rsa-sha256"}}
	for i, r := range res {
		if r.Status != DKIMPass || r.Selector != want[i].sel || r.Algorithm != want[i].algo || r.Domain != "football.example.com" {
			t.Errorf("signature %d: %+v, want pass by %s (%s)", i, r, want[i].sel, want[i].algo)
		}
	}
	if res[0].HeaderB != "/gCrinpcQOoI" {
		t.Errorf("header.b = %q", res[0].HeaderB)
	}

	// A changed subject breaks both signatures.
	bad := strings.Replace(rfc8463Message, "Is dinner ready?", "Is lunch ready?", 1)
	res, err = VerifyDKIM(context.Background(), rfc8463Resolver(), strings.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Status != DKIMFail {
			t.Errorf("tampered signature %d: %s (%v), want fail", i, r.Status, r.Err)
		}
	}
}

// Ed25519 signatures are deterministic: signing the RFC 8463 message with
// the RFC's key and tags reproduces the RFC's b= exactly.
func TestSignDKIMRFC8463Ed25519Deterministic(t *testing.T) {
	seed, _ := base64.StdEncoding.DecodeString(rfc8463EdSeed)
	key := ed25519.NewKeyFromSeed(seed)
	k := &DKIMKey{Domain: "football.example.com", Selector: "brisbane", Signer: key}
	rec, err := k.Record()
	if err != nil || rec.Value != rfc8463EdRecord {
		t.Fatalf("record %q, %v; want %q", rec.Value, err, rfc8463EdRecord)
	}
	// Rebuild the signature field with an empty b= and sign its relaxed
	// canonical form the way RFC 6376 section 3.7 says.
	sig := strings.SplitN(rfc8463Message, "DKIM-Signature:", 3)[1]
	sig = "DKIM-Signature:" + sig
	i := strings.Index(sig, "b=/")
	unsigned := sig[:i+2]
	var data bytes.Buffer
	for _, line := range []string{
		"from:Joe SixPack <joe@football.example.com>",
		"to:Suzie Q <suzie@shopping.example.net>",
		"subject:Is dinner ready?",
		"date:Fri, 11 Jul 2003 21:00:37 -0700 (PDT)",
		"message-id:<20030712040037.46341.5F8J@football.example.com>",
	} {
		data.WriteString(line + "\r\n")
	}
	data.WriteString(relaxHeaderForTest(unsigned))
	h := sha256.Sum256(data.Bytes())
	got := base64.StdEncoding.EncodeToString(ed25519.Sign(key, h[:]))
	want := "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw=="
	if got != want {
		t.Errorf("b=%s\nwant %s", got, want)
	}
}

// relaxHeaderForTest applies RFC 6376 section 3.4.2 to one field, without
// the final CRLF (as the signature field is hashed).
func relaxHeaderForTest(f string) string {
	name, value, _ := strings.Cut(f, ":")
	value = strings.ReplaceAll(value, "\r\n", "")
	value = strings.Join(strings.Fields(value), " ")
	return strings.ToLower(strings.TrimSpace(name)) + ":" + value
}

// RFC 6376 section 3.4.6: the canonicalisation example.
const rfc6376CanonHeader = "A: X\r\nB : Y\t\r\n\tZ  \r\n"
const rfc6376CanonBody = " C \r\nD \t E\r\n\r\n\r\n"

func TestDKIMCanonicalizationRFC6376Example(t *testing.T) {
	// Body: the bh= of a signature is the hash of the canonical body.
	for _, c := range []struct {
		canon dkim.Canonicalization
		body  string
	}{
		{dkim.CanonicalizationRelaxed, " C\r\nD E\r\n"},
		{dkim.CanonicalizationSimple, " C \r\nD \t E\r\n"},
	} {
		msg := "From: a@example.com\r\n" + rfc6376CanonHeader + "\r\n" + rfc6376CanonBody
		var out bytes.Buffer
		_, key, _ := ed25519.GenerateKey(nil)
		err := dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{
			Domain: "example.com", Selector: "s", Signer: key,
			HeaderCanonicalization: c.canon, BodyCanonicalization: c.canon,
		})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(c.body))
		if want := "bh=" + base64.StdEncoding.EncodeToString(sum[:]); !strings.Contains(stripFWS(out.String()), want) {
			t.Errorf("%s body: signature lacks %s:\n%s", c.canon, want, out.String())
		}
	}

	// Header: our relaxed/relaxed signature over the example fields still
	// verifies once they are rewritten in their canonical form
	// "a:X" / "b:Y Z", and a simple one does not.
	k, err := GenerateDKIMKey("example.com", "s", DKIMAlgoEd25519)
	if err != nil {
		t.Fatal(err)
	}
	r := &MockResolver{}
	rec, _ := k.Record()
	r.AddRecord(rec)
	msg := "From: a@example.com\r\nSubject: canon\r\n" + rfc6376CanonHeader + "\r\n" + rfc6376CanonBody
	var signed bytes.Buffer
	err = dkim.Sign(&signed, strings.NewReader(msg), &dkim.SignOptions{
		Domain: "example.com", Selector: "s", Signer: k.Signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "A", "B"},
	})
	if err != nil {
		t.Fatal(err)
	}
	rewritten := strings.Replace(signed.String(), rfc6376CanonHeader, "a:X\r\nb:Y Z\r\n", 1)
	rewritten = strings.Replace(rewritten, rfc6376CanonBody, " C\r\nD E\r\n", 1)
	res, err := VerifyDKIM(context.Background(), r, strings.NewReader(rewritten))
	if err != nil || len(res) != 1 || res[0].Status != DKIMPass {
		t.Fatalf("relaxed after rewriting: %+v, %v", res, err)
	}
}

func TestSignerBothAlgorithmsVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := &MockResolver{}
	for _, c := range []struct{ sel, algo string }{{"rsa1", DKIMAlgoRSA}, {"ed1", DKIMAlgoEd25519}} {
		k, err := GenerateDKIMKey("a.test", c.sel, c.algo)
		if err != nil {
			t.Fatal(err)
		}
		path, err := SaveDKIMKey(dir, k)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; want mode 0600", path, fi.Mode(), err)
		}
		if _, err := SaveDKIMKey(dir, k); !errors.Is(err, ErrDKIMKeyExists) {
			t.Fatalf("saving twice: %v, want ErrDKIMKeyExists", err)
		}
		rec, _ := k.Record()
		if err := r.AddRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := LoadDKIMKeys(dir)
	if err != nil || len(keys) != 2 {
		t.Fatalf("LoadDKIMKeys: %d keys, %v", len(keys), err)
	}
	msg := crlf(strings.Replace(rfc6376Message, "football.example.com>", "a.test>", 1))
	msg = strings.Replace(msg, "From: Joe SixPack <joe@a.test>", "From: Joe SixPack <joe@sub.a.test>", 1)
	sigs, err := NewSigner(keys).Sign(ctx, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(sigs, "DKIM-Signature:"); n != 2 {
		t.Fatalf("%d signatures, want 2:\n%s", n, sigs)
	}
	for _, f := range splitHeader([]byte(sigs)) {
		tags, err := ParseDKIMTags(f.value())
		if err != nil {
			t.Fatal(err)
		}
		h := tagList(map[string]string{"h": stripFWS(tags["h"])}, "h")
		if len(h) < 6 {
			t.Errorf("h=%s: only %d fields signed", tags["h"], len(h))
		}
		n := 0
		for _, name := range h {
			if name == "from" {
				n++
			}
		}
		if n != 2 {
			t.Errorf("h=%s: From signed %d times, want 2 (oversigned)", tags["h"], n)
		}
	}
	if !strings.Contains(sigs, "c=relaxed/relaxed") {
		t.Errorf("not relaxed/relaxed:\n%s", sigs)
	}
	res, err := VerifyDKIM(ctx, r, strings.NewReader(sigs+msg))
	if err != nil || len(res) != 2 {
		t.Fatalf("verify: %+v, %v", res, err)
	}
	for _, x := range res {
		if x.Status != DKIMPass || x.Domain != "a.test" {
			t.Errorf("%+v, want pass for a.test", x)
		}
	}
	// Oversigning: a second From added on top breaks the signatures.
	forged := sigs + "From: ceo@a.test\r\n" + msg
	res, _ = VerifyDKIM(ctx, r, strings.NewReader(forged))
	for _, x := range res {
		if x.Status == DKIMPass {
			t.Errorf("added From still verifies: %+v", x)
		}
	}

	// No key for the domain.
	other := strings.Replace(msg, "joe@sub.a.test", "joe@b.test", 1)
	if _, err := NewSigner(keys).Sign(ctx, strings.NewReader(other)); !errors.Is(err, ErrNoDKIMKey) {
		t.Errorf("foreign From: %v, want ErrNoDKIMKey", err)
	}
}

func TestVerifyDKIMKeyErrors(t *testing.T) {
	ctx := context.Background()
	k, _ := GenerateDKIMKey("a.test", "s", DKIMAlgoEd25519)
	msg := crlf("From: x@a.test\nSubject: hi\n\nbody\n")
	sig, err := NewSigner([]*DKIMKey{k}).Sign(ctx, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		set  func(*MockResolver)
		want DKIMStatus
	}{
		{"missing key", func(*MockResolver) {}, DKIMPermError},
		{"servfail", func(m *MockResolver) {
			m.Fail = map[string]error{"s._domainkey.a.test": NewTempError("s._domainkey.a.test")}
		}, DKIMTempError},
		{"revoked", func(m *MockResolver) { m.AddTXT("s._domainkey.a.test", "v=DKIM1; k=ed25519; p=") }, DKIMPermError},
		{"other key", func(m *MockResolver) {
			o, _ := GenerateDKIMKey("a.test", "s", DKIMAlgoEd25519)
			rec, _ := o.Record()
			m.AddRecord(rec)
		}, DKIMFail},
	} {
		m := &MockResolver{}
		c.set(m)
		res, err := VerifyDKIM(ctx, m, strings.NewReader(sig+msg))
		if err != nil || len(res) != 1 || res[0].Status != c.want {
			t.Errorf("%s: %+v, %v; want %s", c.name, res, err, c.want)
		}
	}
	res, err := VerifyDKIM(ctx, &MockResolver{}, strings.NewReader(msg))
	if err != nil || len(res) != 0 {
		t.Errorf("unsigned: %+v, %v", res, err)
	}
}

func TestLoadDKIMKeysRefusesOpenPermissions(t *testing.T) {
	dir := t.TempDir()
	k, _ := GenerateDKIMKey("a.test", "s", DKIMAlgoEd25519)
	path, err := SaveDKIMKey(dir, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDKIMKeys(dir); err == nil {
		t.Fatal("a world-readable key was loaded")
	}
	if _, err := GenerateDKIMKey("a.test", "../x", DKIMAlgoRSA); err == nil {
		t.Fatal("a selector escaping the key directory was accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "a.test")); err != nil {
		t.Fatal(err)
	}
}

package dnsauth

import (
	"errors"
	"net"
	"net/mail"
	"strings"
	"testing"
)

// TestAuthResultsHeaderOneField: whatever the properties hold (an
// envelope sender, a HELO name, DNS names, an error text, a From
// domain), Header is one field that a mail parser reads back as one, and
// the values come back as written.
func TestAuthResultsHeaderOneField(t *testing.T) {
	bad := "x\r\nX-Inj: 1\x00(y)\\\"z"
	a := AuthResults{
		IPRev:       &IPRevResult{Status: "pass", IP: net.ParseIP("192.0.2.1"), Names: []string{"host" + bad}},
		SPF:         &SPFResult{Status: "pass", Identity: "mailfrom", Domain: "a.test", Sender: `"q ` + bad + `"@a.test`},
		DKIM:        []DKIMResult{{Status: "fail", Domain: "d" + bad, Selector: "s", Err: errors.New("bad" + bad)}},
		DKIMChecked: true,
		DMARC:       &DMARCResult{Status: "fail", Domain: "f" + bad},
	}
	h := a.Header("mx.test")
	m, err := mail.ReadMessage(strings.NewReader(h + "X-After: 1\r\n\r\n"))
	if err != nil {
		t.Fatalf("%q: %v", h, err)
	}
	if len(m.Header) != 2 || m.Header.Get("X-After") != "1" {
		t.Fatalf("%q reads as %v", h, m.Header)
	}
	v := m.Header.Get("Authentication-Results")
	if AuthServID(v) != "mx.test" {
		t.Errorf("authserv-id %q", AuthServID(v))
	}
	clean := strings.NewReplacer("\r", " ", "\n", " ", "\x00", " ").Replace(bad)
	for prop, want := range map[string]string{
		"smtp.mailfrom": `"q ` + clean + `"@a.test`,
		"header.from":   "f" + clean,
		"header.d":      "d" + clean,
	} {
		if got := propertyValue(v, prop); got != want {
			t.Errorf("%s reads as %q, want %q", prop, got, want)
		}
	}
}

// propertyValue reads the quoted-string value of prop in an
// Authentication-Results value.
func propertyValue(v, prop string) string {
	_, rest, ok := strings.Cut(v, " "+prop+"=\"")
	if !ok {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '\\':
			i++
			if i < len(rest) {
				b.WriteByte(rest[i])
			}
		case '"':
			return b.String()
		default:
			b.WriteByte(rest[i])
		}
	}
	return ""
}

// TestAuthResultsHeaderIDN: the HELO identity and the PTR name are
// written as A-labels unless the message has SMTPUTF8, and a UTF-8 name
// that is no valid domain as an encoded-word: the field stays ASCII.
func TestAuthResultsHeaderIDN(t *testing.T) {
	a := AuthResults{
		IPRev: &IPRevResult{Status: "pass", IP: net.ParseIP("192.0.2.1"), Names: []string{"mx.bücher.example"}},
		SPF:   &SPFResult{Status: "none", Identity: "helo", Domain: "Mx.Bücher.example"},
	}
	want := "Authentication-Results: mx.test;\r\n" +
		"\tiprev=pass policy.iprev=192.0.2.1 (mx.xn--bcher-kva.example);\r\n" +
		"\tspf=none smtp.helo=mx.xn--bcher-kva.example\r\n"
	if got := a.Header("mx.test"); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	a.IPRev.Names[0] = "\u0301x.example"
	a.SPF.Domain = "bücher_x"
	want = "Authentication-Results: mx.test;\r\n" +
		"\tiprev=pass policy.iprev=192.0.2.1 (=?utf-8?b?zIF4LmV4YW1wbGU=?=);\r\n" +
		"\tspf=none smtp.helo=\"=?utf-8?b?YsO8Y2hlcl94?=\"\r\n"
	if got := a.Header("mx.test"); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	a.UTF8 = true
	a.IPRev.Names[0], a.SPF.Domain = "mx.bücher.example", "mx.bücher.example"
	want = "Authentication-Results: mx.test;\r\n" +
		"\tiprev=pass policy.iprev=192.0.2.1 (mx.bücher.example);\r\n" +
		"\tspf=none smtp.helo=\"mx.bücher.example\"\r\n"
	if got := a.Header("mx.test"); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

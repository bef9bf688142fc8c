package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/examples/fullserver/config"
)

// autoconfigClient returns an HTTPS client that trusts only the server's
// self-signed certificate and dials addr whatever the URL's host, as a
// client resolving autoconfig.h.test to this server would.
func autoconfigClient(t *testing.T, s *server, addr string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "tls", s.cfg.Hostname+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: s.cfg.Hostname},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

func get(t *testing.T, c *http.Client, method, url, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// Each answer names exactly the listeners configured (POP3 without TLS
// and IMAP with STARTTLS are off here), with their real ports.
func TestAutoconfigAnswersNameTheListeners(t *testing.T) {
	s, addrs := startAll(t, func(c *config.Config) {
		c.Listen.HTTPS = "127.0.0.1:0"
		c.Listen.POP3, c.Listen.IMAP = "", ""
	})
	c := autoconfigClient(t, s, addrs["https"])
	host := s.cfg.Hostname

	// Thunderbird, by host name and by address.
	type server struct {
		Type       string `xml:"type,attr"`
		Hostname   string `xml:"hostname"`
		Port       int    `xml:"port"`
		SocketType string `xml:"socketType"`
		Username   string `xml:"username"`
	}
	var tb struct {
		XMLName  xml.Name `xml:"clientConfig"`
		Domain   string   `xml:"emailProvider>domain"`
		Incoming []server `xml:"emailProvider>incomingServer"`
		Outgoing []server `xml:"emailProvider>outgoingServer"`
	}
	for _, url := range []string{
		"https://autoconfig.h.test/mail/config-v1.1.xml",
		"https://h.test/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=u%40h.test",
	} {
		code, body, _ := get(t, c, "GET", url, "")
		if code != 200 {
			t.Fatalf("%s: %d %s", url, code, body)
		}
		tb.Incoming, tb.Outgoing = nil, nil
		if err := xml.Unmarshal([]byte(body), &tb); err != nil {
			t.Fatalf("%s: %v\n%s", url, err, body)
		}
		in := fmt.Sprint(tb.Incoming)
		wantIn := fmt.Sprint([]server{
			{"imap", host, port(t, addrs["imaps"]), "SSL", "%EMAILADDRESS%"},
			{"pop3", host, port(t, addrs["pop3s"]), "SSL", "%EMAILADDRESS%"},
		})
		out := fmt.Sprint(tb.Outgoing)
		wantOut := fmt.Sprint([]server{
			{"smtp", host, port(t, addrs["submissions"]), "SSL", "%EMAILADDRESS%"},
			{"smtp", host, port(t, addrs["submission"]), "STARTTLS", "%EMAILADDRESS%"},
		})
		if tb.Domain != "h.test" || in != wantIn || out != wantOut {
			t.Errorf("%s:\n domain %q\n incoming %s\n want     %s\n outgoing %s\n want     %s", url, tb.Domain, in, wantIn, out, wantOut)
		}
	}

	// Outlook's POX Autodiscover.
	req := `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
 <Request><EMailAddress>u@h.test</EMailAddress>
 <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
 </Request></Autodiscover>`
	code, body, _ := get(t, c, "POST", "https://autodiscover.h.test/Autodiscover/Autodiscover.xml", req)
	if code != 200 {
		t.Fatalf("autodiscover: %d %s", code, body)
	}
	var ad struct {
		Protocols []struct {
			Type, Server, LoginName, SSL, Encryption string
			Port                                     int
		} `xml:"Response>Account>Protocol"`
	}
	if err := xml.Unmarshal([]byte(body), &ad); err != nil {
		t.Fatalf("autodiscover: %v\n%s", err, body)
	}
	got := fmt.Sprint(ad.Protocols)
	want := fmt.Sprintf("[{IMAP %[1]s u@h.test on SSL %[2]d} {POP3 %[1]s u@h.test on SSL %[3]d} {SMTP %[1]s u@h.test on SSL %[4]d}]",
		host, port(t, addrs["imaps"]), port(t, addrs["pop3s"]), port(t, addrs["submissions"]))
	if got != want {
		t.Errorf("autodiscover protocols\n got %s\nwant %s", got, want)
	}

	// Apple's profile.
	code, body, hdr := get(t, c, "GET", "https://h.test/email.mobileconfig?emailaddress=u%40h.test", "")
	if code != 200 || hdr.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("mobileconfig: %d %s %s", code, hdr.Get("Content-Type"), body)
	}
	pl, err := parsePlist(body)
	if err != nil {
		t.Fatalf("mobileconfig: %v\n%s", err, body)
	}
	top := pl.(map[string]any)
	acct := top["PayloadContent"].([]any)[0].(map[string]any)
	if top["PayloadType"] != "Configuration" || acct["PayloadType"] != "com.apple.mail.managed" ||
		acct["EmailAccountType"] != "EmailTypeIMAP" || acct["EmailAddress"] != "u@h.test" ||
		acct["IncomingMailServerHostName"] != host || acct["IncomingMailServerPortNumber"] != int64(port(t, addrs["imaps"])) ||
		acct["IncomingMailServerUseSSL"] != true ||
		acct["OutgoingMailServerHostName"] != host || acct["OutgoingMailServerPortNumber"] != int64(port(t, addrs["submissions"])) {
		t.Errorf("mobileconfig: %v", top)
	}

	// A domain not served here gets nothing; nor does a request without
	// an address.
	for _, u := range []string{
		"https://autoconfig.other.test/mail/config-v1.1.xml",
		"https://h.test/email.mobileconfig?emailaddress=u%40other.test",
		"https://h.test/email.mobileconfig",
	} {
		if code, body, _ := get(t, c, "GET", u, ""); code == 200 {
			t.Errorf("%s: %d %s", u, code, body)
		}
	}
	if code, body, _ := get(t, c, "POST", "https://h.test/autodiscover/autodiscover.xml", "<Autodiscover><Request/></Autodiscover>"); code != 400 {
		t.Errorf("autodiscover without an address: %d %s", code, body)
	}
}

// parsePlist decodes an XML property list into maps, slices, strings,
// int64 and bools.
func parsePlist(doc string) (any, error) {
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "plist" {
			v, _, err := plistValue(d)
			return v, err
		}
	}
}

// plistValue reads the next value; end reports the end of an enclosing
// element instead.
func plistValue(d *xml.Decoder) (v any, end bool, err error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, false, err
		}
		switch tok := tok.(type) {
		case xml.EndElement:
			return nil, true, nil
		case xml.StartElement:
			switch tok.Name.Local {
			case "true", "false":
				d.Skip()
				return tok.Name.Local == "true", false, nil
			case "string", "key":
				var s string
				err := d.DecodeElement(&s, &tok)
				return s, false, err
			case "integer":
				var n int64
				err := d.DecodeElement(&n, &tok)
				return n, false, err
			case "array":
				var a []any
				for {
					e, end, err := plistValue(d)
					if err != nil || end {
						return a, false, err
					}
					a = append(a, e)
				}
			case "dict":
				m := map[string]any{}
				for {
					k, end, err := plistValue(d)
					if err != nil || end {
						return m, false, err
					}
					v, _, err := plistValue(d)
					if err != nil {
						return nil, false, err
					}
					m[k.(string)] = v
				}
			}
			return nil, false, fmt.Errorf("plist: unknown element %s", tok.Name.Local)
		}
	}
}

func FuzzParseAutodiscoverRequest(f *testing.F) {
	f.Add([]byte(`<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>u@h.test</EMailAddress></Request></Autodiscover>`))
	f.Add([]byte(`<Autodiscover><Request/></Autodiscover>`))
	f.Add([]byte(`<Autodiscover><Request><EMailAddress>@</EMailAddress></Request></Autodiscover>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		addr, err := parseAutodiscoverRequest(body)
		if err != nil {
			return
		}
		if _, d := splitAddress(addr); d == "" {
			t.Fatalf("accepted %q without a domain", addr)
		}
	})
}

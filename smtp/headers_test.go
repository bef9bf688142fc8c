package smtp

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/smtp/mail"
)

func TestScanHeader(t *testing.T) {
	msg := "Received: a\r\n\tfolded; x\r\nreceived : b\r\nMessage-Id: <x@y>\r\nSubject: Received: no\r\n\r\nReceived: in the body\r\nDate: in the body\r\n"
	h := scanHeader([]byte(msg))
	if h.received != 2 || !h.messageID || h.date {
		t.Fatalf("got %+v", h)
	}
}

func FuzzScanHeader(f *testing.F) {
	f.Add([]byte("Received: a\r\nDate: b\r\n\r\nbody"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		h := scanHeader(in)
		if h.received > strings.Count(strings.ToLower(string(in)), "received") {
			t.Fatalf("counted %d Received fields", h.received)
		}
	})
}

func TestReceivedHeader(t *testing.T) {
	env := &mail.Envelope{
		ID:         "ABC",
		Helo:       "evil (injected)\r\nX-Fake: 1",
		RemoteAddr: &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1234},
		AuthUser:   "alice@local.example",
		TLS:        &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256},
		Recipients: []string{"bob@local.example"},
		Received:   time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC),
	}
	got := receivedHeader("mx.test", protocolName(false, true, true, true), env)
	want := "Received: from unknown (helo=evil \\(injected\\)  X-Fake: 1 [192.0.2.7])\r\n" +
		"\t(Authenticated sender: alice@local.example)\r\n" +
		"\tby mx.test (mailagent) with ESMTPSA id ABC\r\n" +
		"\t(version=TLS1.3 cipher=TLS_AES_128_GCM_SHA256)\r\n" +
		"\tfor <bob@local.example>;\r\n" +
		"\tFri, 01 Mar 2024 12:00:00 +0000"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	env.Helo = "client.example"
	env.Recipients = []string{`a "b"\c@local.example`}
	got = receivedHeader("mx.test", "ESMTP", env)
	for _, part := range []string{"from client.example ([192.0.2.7])", `for <"a \"b\"\\c"@local.example>;`} {
		if !strings.Contains(got, part) {
			t.Errorf("%q lacks %q", got, part)
		}
	}
}

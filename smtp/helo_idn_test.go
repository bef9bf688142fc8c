package smtp

import (
	"strings"
	"testing"
)

// receivedField returns the first Received field of msg, the one this
// server prepended, with its folds.
func receivedField(t *testing.T, msg string) string {
	t.Helper()
	i := strings.Index(msg, "\r\nReceived: ")
	if i < 0 {
		t.Fatalf("no Received field in %q", msg)
	}
	f := msg[i+2:]
	end := 0
	for {
		j := strings.Index(f[end:], "\r\n")
		if j < 0 {
			t.Fatalf("unterminated Received field in %q", msg)
		}
		end += j + 2
		if f[end] != ' ' && f[end] != '\t' {
			return f[:end-2]
		}
	}
}

// TestHeloIDNReceived: a UTF-8 HELO, EHLO or LHLO name is written into
// the stored Received field as its A-labels when the transaction has no
// SMTPUTF8, on the MX, submission and LMTP; with SMTPUTF8 the UTF-8
// name stays; a UTF-8 name that is no valid domain is written as an
// encoded-word in the comment, never as raw UTF-8.
func TestHeloIDNReceived(t *testing.T) {
	st := newTestStack(t)
	mx, _ := st.serve(st.options(MX))
	sub, _ := st.serve(st.options(Submission))
	lmtp, _ := st.serve(st.options(LMTP))
	cases := []struct {
		name, addr, greet, helo, mailArg string
		submit                           bool
		want                             string
	}{
		{"mx", mx, "EHLO", "mx.bücher.example", "", false, "Received: from mx.xn--bcher-kva.example ([127.0.0.1])"},
		{"mx-helo", mx, "HELO", "MX.Bücher.example", "", false, "Received: from mx.xn--bcher-kva.example ([127.0.0.1])"},
		{"mx-smtputf8", mx, "EHLO", "mx.bücher.example", " SMTPUTF8", false, "Received: from mx.bücher.example ([127.0.0.1])"},
		{"mx-not-idn", mx, "EHLO", "\u0301x.bücher.example", "", false, "Received: from unknown (helo==?utf-8?b?zIF4LmLDvGNoZXIuZXhhbXBsZQ==?= [127.0.0.1])"},
		{"mx-not-domain", mx, "EHLO", "bücher_(x)", "", false, "Received: from unknown (helo==?utf-8?b?YsO8Y2hlcl8oeCk=?= [127.0.0.1])"},
		{"submission", sub, "EHLO", "laptop.bücher.example", "", true, "Received: from laptop.xn--bcher-kva.example ([127.0.0.1])"},
		{"lmtp", lmtp, "LHLO", "relay.bücher.example", "", false, "Received: from relay.xn--bcher-kva.example ([127.0.0.1])"},
		{"lmtp-smtputf8", lmtp, "LHLO", "relay.bücher.example", " SMTPUTF8", false, "Received: from relay.bücher.example ([127.0.0.1])"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, "tcp", tc.addr)
			c.run("S: 220")
			if tc.submit {
				c.run(`
					C: EHLO x
					S: 250
					C: STARTTLS
					S: 220
					TLS`)
			}
			c.run(`
				C: ` + tc.greet + ` ` + tc.helo + `
				S: 250`)
			from := "sender@far.example"
			if tc.submit {
				c.run(`
					C: AUTH PLAIN ` + plainIR("alice@local.example", testPassword) + `
					S: 235`)
				from = "alice@local.example"
			}
			c.run(`
				C: MAIL FROM:<` + from + `>` + tc.mailArg + `
				S: 250
				C: RCPT TO:<bob@local.example>
				S: 250
				C: DATA
				S: 354
				R: "From: <` + from + `>\r\nSubject: idn ` + tc.name + `\r\n\r\nbody\r\n.\r\n"
				S: 250
				C: QUIT
				S: 221`)
			var msg string
			for _, m := range st.messages("bob@local.example", "") {
				if strings.Contains(m, "\r\nSubject: idn "+tc.name+"\r\n") {
					msg = m
				}
			}
			if msg == "" {
				t.Fatalf("no stored message for %s", tc.name)
			}
			f := receivedField(t, msg)
			if !strings.HasPrefix(f, tc.want+"\r\n") {
				t.Fatalf("Received field\n%s\nwant it to start with\n%s", f, tc.want)
			}
			if tc.mailArg == "" {
				for i := 0; i < len(f); i++ {
					if f[i] >= 0x80 {
						t.Fatalf("Received field without SMTPUTF8 holds non-ASCII byte %#x: %q", f[i], f)
					}
				}
			}
		})
	}
}

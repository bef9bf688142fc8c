package smtp

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

func plainIR(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// tlsHello is the script of a submission client up to its EHLO over
// TLS.
const tlsHello = `
		S: 220
		C: EHLO laptop
		S: 250
		C: STARTTLS
		S: 220
		TLS
		C: EHLO laptop
		S: 250`

// tlsLogin is the script up to an authenticated session.
func tlsLogin(user string) string {
	return tlsHello + fmt.Sprintf(`
		H: AUTH PLAIN LOGIN
		C: AUTH PLAIN %s
		S: 235 2.0.0`, plainIR(user, testPassword))
}

func TestSubmissionBeforeTLS(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(Submission))
	c := dial(t, "tcp", addr)
	c.run(`
		S: 220 mx.test ESMTP
		C: EHLO laptop
		S: 250
		H: STARTTLS
		N: AUTH
		C: AUTH PLAIN ` + plainIR("alice@local.example", testPassword) + `
		S: 538 5.7.11
		C: AUTH LOGIN
		S: 538 5.7.11
		C: MAIL FROM:<alice@local.example>
		S: 530 5.7.0
		C: STARTTLS
		S: 220
		TLS
		C: EHLO laptop
		S: 250
		H: AUTH PLAIN LOGIN
		C: MAIL FROM:<alice@local.example>
		S: 530 5.7.0 Authentication required`)
}

func TestSubmissionSends(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(Submission))
	c := dial(t, "tcp", addr)
	msg := "From: alice@local.example\r\nTo: bob@local.example\r\nSubject: hi\r\n\r\nBody.\r\n"
	c.run(tlsLogin("alice@local.example") + `
		C: MAIL FROM:<alice@local.example>
		S: 250
		C: RCPT TO:<bob@local.example>
		S: 250
		C: RCPT TO:<friend@far.example>
		S: 250
		C: DATA
		S: 354
		R: ` + fmt.Sprintf("%q", msg+".\r\n") + `
		S: 250 2.0.0
		C: QUIT
		S: 221`)
	got := st.messages("bob@local.example", "")
	if len(got) != 1 {
		t.Fatalf("bob has %d messages, want 1", len(got))
	}
	for _, want := range []string{"\r\nMessage-ID: <", "\r\nDate: ", "with ESMTPSA id ",
		"(Authenticated sender: alice@local.example)", "(version=TLS1.3 cipher=TLS_", "\r\n" + msg} {
		if !strings.Contains(got[0], want) {
			t.Errorf("delivered message lacks %q:\n%s", want, got[0])
		}
	}
	q := st.queue.All()
	if len(q) != 1 || strings.Join(q[0].Rcpts, ",") != "friend@far.example" {
		t.Fatalf("queue got %+v, want one message to friend@far.example", q)
	}
	if !strings.Contains(q[0].Data, "\r\nMessage-ID: <") || strings.Contains(q[0].Data, "Delivered-To") {
		t.Errorf("queued copy:\n%s", q[0].Data)
	}
}

func TestSubmissionKeepsMessageIDAndDate(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(Submission))
	c := dial(t, "tcp", addr)
	msg := "Message-ID: <x@y>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: s\r\n\r\nB\r\n"
	c.run(tlsLogin("alice@local.example") + `
		C: MAIL FROM:<alice@local.example>
		S: 250
		C: RCPT TO:<bob@local.example>
		S: 250
		C: DATA
		S: 354
		R: ` + fmt.Sprintf("%q", msg+".\r\n") + `
		S: 250`)
	got := st.messages("bob@local.example", "")
	if len(got) != 1 || strings.Count(got[0], "Message-ID:") != 1 || strings.Count(got[0], "Date:") != 1 {
		t.Fatalf("want the message's own Message-ID and Date only, got %q", got)
	}
}

func TestSubmissionSenderOwnership(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(Submission))
	for _, tc := range []struct{ from, want string }{
		{"alice@local.example", "250"},
		{"Alice@LOCAL.example", "250"},
		{"alice+lists@local.example", "250"},
		{"sales@other.example", "250"}, // forwarding to alice
		{"team@local.example", "250"},  // a list alice is on
		{"bob@local.example", "553 5.7.1"},
		{"carol@other.example", "553 5.7.1"},
		{"alice@far.example", "553 5.7.1"},
		{"", "553 5.7.1"},
		{"alice%far.example@local.example", "553 5.1.7"},
	} {
		t.Run(tc.from, func(t *testing.T) {
			c := dial(t, "tcp", addr)
			c.run(tlsLogin("alice@local.example") + `
				C: MAIL FROM:<` + tc.from + `>
				S: ` + tc.want)
		})
	}
}

func TestSubmissionAuthLoginAndFailures(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(Submission))
	c := dial(t, "tcp", addr)
	c.run(tlsHello + `
		C: AUTH LOGIN
		S: 334 ` + b64("Username:") + `
		C: ` + b64("alice@local.example") + `
		S: 334 ` + b64("Password:") + `
		C: ` + b64("wrong") + `
		S: 535 5.7.8
		C: AUTH PLAIN ` + plainIR("alice@local.example", "wrong") + `
		S: 535 5.7.8
		C: AUTH PLAIN ` + plainIR("nobody@local.example", "wrong") + `
		S: 421 4.7.0
		CLOSED`)

	c = dial(t, "tcp", addr)
	c.run(tlsHello + `
		C: AUTH LOGIN ` + b64("alice@local.example") + `
		S: 334 ` + b64("Password:") + `
		C: ` + b64(testPassword) + `
		S: 235`)
}

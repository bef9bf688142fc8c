package smtp

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
)

// policy is an embedder's checks: fixed iprev and SPF results, and a
// message verdict chosen by the Subject.
type policy struct{}

func (policy) CheckConnect(ctx context.Context, env *mail.Envelope) mail.Verdict {
	if env.Helo == "blocked.example" {
		return mail.Verdict{Action: mail.Reject, Reply: &mail.Error{Code: 550, EnhancedCode: [3]int{5, 7, 25}, Message: "Reverse DNS failed"}}
	}
	env.Values[policy{}] = "seen at connect"
	return mail.Verdict{Results: []mail.AuthResult{{Method: "iprev", Result: "pass", Props: map[string]string{"policy.iprev": "127.0.0.1"}}}}
}

func (policy) CheckMail(ctx context.Context, env *mail.Envelope) mail.Verdict {
	if strings.HasSuffix(env.From, "@spf-fail.example") {
		return mail.Verdict{Action: mail.Reject, Reply: &mail.Error{Code: 550, EnhancedCode: [3]int{5, 7, 23}, Message: "SPF fail"}}
	}
	return mail.Verdict{Results: []mail.AuthResult{{Method: "spf", Result: "pass", Props: map[string]string{"smtp.mailfrom": env.From}}}}
}

func (policy) CheckMessage(ctx context.Context, env *mail.Envelope, msg mail.Body) mail.Verdict {
	r, _ := msg.Open()
	b, _ := io.ReadAll(r)
	r.Close()
	// DMARC needs what SPF found at MAIL time.
	if len(env.Results) != 2 || env.Results[1].Method != "spf" || env.Values[policy{}] != "seen at connect" {
		return mail.Verdict{Action: mail.Reject, Reply: &mail.Error{Code: 451, EnhancedCode: [3]int{4, 3, 0}, Message: "results lost"}}
	}
	v := mail.Verdict{Results: []mail.AuthResult{{Method: "dmarc", Result: "pass", Props: map[string]string{"header.from": "far.example"}}},
		Headers: []string{"X-Checked: yes"}}
	switch {
	case strings.Contains(string(b), "Subject: spam"):
		v.Action = mail.Junk
	case strings.Contains(string(b), "Subject: forged"):
		v.Action = mail.Reject
	}
	return v
}

func TestChecks(t *testing.T) {
	st := newTestStack(t)
	o := st.options(MX)
	o.Checks = mail.Checks{Connect: []mail.ConnectChecker{policy{}}, Mail: []mail.MailChecker{policy{}}, Message: []mail.MessageChecker{policy{}}}
	addr, _ := st.serve(o)
	msg := func(subject string) string {
		return fmt.Sprintf("%q", "Subject: "+subject+"\r\n\r\nx\r\n.\r\n")
	}
	dial(t, "tcp", addr).run(greet + `
		C: MAIL FROM:<x@spf-fail.example>
		S: 550 5.7.23
		` + toAlice + `
		R: ` + fmt.Sprintf("%q", "Authentication-Results: MX.test; dkim=pass\r\nAuthentication-Results: other.example; dkim=fail\r\nSubject: ham\r\n\r\nx\r\n.\r\n") + `
		S: 250
		` + toAlice + `
		R: ` + msg("spam") + `
		S: 250
		` + toAlice + `
		R: ` + msg("forged") + `
		S: 550 5.7.1`)
	inbox := st.messages("alice@local.example", "")
	if len(inbox) != 1 {
		t.Fatalf("INBOX has %d messages, want 1", len(inbox))
	}
	want := "Authentication-Results: mx.test;\r\n\tiprev=pass policy.iprev=127.0.0.1;\r\n\tspf=pass smtp.mailfrom=sender@far.example;\r\n\tdmarc=pass header.from=far.example\r\nX-Checked: yes\r\nReceived: "
	if !strings.Contains(inbox[0], want) {
		t.Errorf("message lacks %q:\n%s", want, inbox[0])
	}
	if strings.Count(inbox[0], "Authentication-Results: mx.test") != 1 || !strings.Contains(inbox[0], "\r\nAuthentication-Results: other.example; dkim=fail\r\n") {
		t.Errorf("forged Authentication-Results not removed, or another host's removed:\n%s", inbox[0])
	}
	junk := st.messages("alice@local.example", "Junk")
	if len(junk) != 1 || !strings.Contains(junk[0], "Subject: spam") {
		t.Fatalf("Junk has %q", junk)
	}

	dial(t, "tcp", addr).run(`
		S: 220
		C: EHLO blocked.example
		S: 550 5.7.25
		CLOSED`)
}

func TestAuthResultsQuoting(t *testing.T) {
	got := authResultsHeader("mx.test", []mail.AuthResult{{Method: "spf", Result: "fail", Reason: "not\r\nallowed (here)"}})
	want := "Authentication-Results: mx.test;\r\n\tspf=fail reason=\"not  allowed (here)\""
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := authResultsHeader("mx.test", nil); got != "Authentication-Results: mx.test; none" {
		t.Fatalf("got %q", got)
	}
}

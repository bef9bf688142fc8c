package smtp

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestLMTPPerRecipientStatus(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(LMTP))
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", 200) + "\r\n"
	c := dial(t, "tcp", addr)
	c.run(`
		S: 220 mx.test LMTP
		C: EHLO client
		S: 500
		C: LHLO postfix.local
		S: 250
		H: PIPELINING
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: RCPT TO:<nobody@local.example>
		S: 550 5.1.1
		C: RCPT TO:<small@local.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: DATA
		S: 354
		R: ` + fmt.Sprintf("%q", big+".\r\n") + `
		S: 250 2.0.0 <alice@local.example>
		S: 552 5.2.2 <small@local.example>
		S: 250 2.0.0 <alice@local.example>
		C: QUIT
		S: 221`)
	got := st.messages("alice@local.example", "")
	if len(got) != 1 || !strings.Contains(got[0], "with LMTP id ") || !strings.HasSuffix(got[0], big) {
		t.Fatalf("alice got %q, want one copy received with LMTP", got)
	}
	if n := len(st.messages("small@local.example", "")); n != 0 {
		t.Errorf("over-quota mailbox has %d messages", n)
	}
}

func TestLMTPUnixSocket(t *testing.T) {
	st := newTestStack(t)
	o := st.options(LMTP)
	o.Network, o.Addr = "unix", filepath.Join(st.dir, "lmtp.sock")
	addr, _ := st.serve(o)
	c := dial(t, "unix", addr)
	c.run(`
		S: 220
		C: LHLO postfix.local
		S: 250
		C: MAIL FROM:<>
		S: 250
		C: RCPT TO:<team@local.example>
		S: 250
		C: DATA
		S: 354
		R: ` + fmt.Sprintf("%q", testMessage+".\r\n") + `
		S: 250 2.0.0 <team@local.example>`)
	for _, u := range []string{"alice@local.example", "bob@local.example"} {
		got := st.messages(u, "")
		if len(got) != 1 || !strings.HasPrefix(got[0], "Return-Path: <>\r\nDelivered-To: "+u+"\r\nReceived: from postfix.local\r\n") {
			t.Fatalf("%s got %q", u, got)
		}
	}
}

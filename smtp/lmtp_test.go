package smtp

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/router"
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

// TestLMTPRepliesNameTheID: each per-recipient 250 names the
// transaction's ID as the SMTP 250 does ("OK: queued as ID"), the one ID
// of the Received field and of the log lines about the delivery; a
// recipient that failed gets its own reply and no ID.
func TestLMTPRepliesNameTheID(t *testing.T) {
	st := newTestStack(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	r, err := router.New(router.Options{Directory: st.db, Local: st.local, Queue: st.queue, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	o := st.options(LMTP)
	o.Target, o.Logger = r, log
	addr, _ := st.serve(o)
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", 200) + "\r\n"
	c := dial(t, "tcp", addr)
	c.run(`
		S: 220
		C: LHLO postfix.local
		S: 250
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: RCPT TO:<small@local.example>
		S: 250
		C: RCPT TO:<team@local.example>
		S: 250
		C: DATA
		S: 354
		R: ` + fmt.Sprintf("%q", big+".\r\n"))
	saved := regexp.MustCompile(`^250 2\.0\.0 <([^>]+)> OK: queued as (\S+)$`)
	var id string
	for _, want := range []string{"alice@local.example", "small@local.example", "team@local.example"} {
		lines, err := c.reply()
		if err != nil || len(lines) != 1 {
			t.Fatalf("status for %s: %q, %v", want, lines, err)
		}
		if want == "small@local.example" {
			if !strings.HasPrefix(lines[0], "552 5.2.2 <small@local.example> ") || strings.Contains(lines[0], "queued") {
				t.Errorf("over-quota status: %q", lines[0])
			}
			continue
		}
		m := saved.FindStringSubmatch(lines[0])
		if m == nil || m[1] != want {
			t.Fatalf("status for %s: %q, want 250 naming the ID", want, lines[0])
		}
		if id == "" {
			id = m[2]
		} else if m[2] != id {
			t.Errorf("status for %s names %s, the one before named %s", want, m[2], id)
		}
	}
	c.run(`
		C: QUIT
		S: 221`)

	for _, u := range []string{"alice@local.example", "bob@local.example"} {
		// alice, given and through team, gets one copy.
		got := st.messages(u, "")
		if len(got) != 1 || !strings.Contains(got[0], " with LMTP id "+id+";") {
			t.Errorf("%s has %q, want one copy received with id %s", u, got, id)
		}
	}
	delivered := map[string]bool{}
	var summary int
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		switch m["msg"] {
		case "delivered":
			if m["id"] != id {
				t.Errorf("delivery line without the ID %s: %s", id, l)
			}
			delivered[m["rcpt"].(string)] = true
		case "message delivered":
			if m["id"] != id || m["rcpts"] != 2.0 {
				t.Errorf("summary line: %s, want id %s and 2 recipients", l, id)
			}
			summary++
		case "recipient not delivered":
			if m["id"] != id || m["rcpt"] != "small@local.example" {
				t.Errorf("failure line: %s, want id %s for small", l, id)
			}
		}
	}
	if !delivered["alice@local.example"] || !delivered["team@local.example"] || delivered["small@local.example"] || summary != 1 {
		t.Errorf("delivery lines for %v, %d summary lines; log:\n%s", delivered, summary, logs)
	}
}

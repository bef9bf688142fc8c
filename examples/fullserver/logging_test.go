package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fakeMX is a minimal SMTP server standing for a remote MX: it accepts
// every message with the reply given and records nothing.
func fakeMX(t *testing.T, accept string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				r := bufio.NewReader(c)
				w := func(s string) { c.Write([]byte(s + "\r\n")) }
				w("220 mx.remote.test ESMTP")
				data := false
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					l = strings.TrimRight(l, "\r\n")
					switch {
					case data:
						if l == "." {
							data = false
							w(accept)
						}
					case strings.HasPrefix(strings.ToUpper(l), "EHLO"):
						w("250 mx.remote.test")
					case strings.ToUpper(l) == "DATA":
						data = true
						w("354 go ahead")
					case strings.ToUpper(l) == "QUIT":
						w("221 bye")
						return
					default:
						w("250 ok")
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// logLines parses the server's JSON log, one object per line.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line not JSON: %v\n%s", err, l)
		}
		out = append(out, m)
	}
	return out
}

// withValue keeps the lines whose key holds v.
func withValue(lines []map[string]any, key, v string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if s, _ := l[key].(string); s == v {
			out = append(out, l)
		}
	}
	return out
}

// TestLogFollowsOneID reads the JSON log of a running server as an
// administrator would: the ID in the 250 reply of an MX transaction
// finds the line naming the alias's final mailbox and folder, and the
// ID each LMTP recipient's 250 names finds its delivery lines, the
// ID of a submission finds the queue's attempt with the remote server's
// host, address, TLS state and reply; logins name user, address, TLS and
// method for IMAP and POP3 alike.
func TestLogFollowsOneID(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	srv := qaStart(t, bin, qaConfig(t, t.TempDir(), "[log]\nformat = \"json\""))
	srv.admin(t, "", "domain", "add", "logs.test")
	srv.admin(t, "pw-of-erin-1234\n", "user", "add", "erin@logs.test")
	srv.admin(t, "", "alias", "add", "sales@logs.test", "erin@logs.test")
	mx := fakeMX(t, "250 2.0.0 Ok: queued as REMOTE42")
	srv.admin(t, "", "transport", "set", "remote.test", "smtp:["+strings.Replace(mx, ":", "]:", 1))

	queuedAs := regexp.MustCompile(`^250 2\.0\.0 OK: queued as (\S+)$`)
	// MX: to an alias.
	c := qaSMTP(t, srv.addrs["mx"])
	c.dialog([2]string{"EHLO client.test", "250"}, [2]string{"MAIL FROM:<x@elsewhere.test>", "250"},
		[2]string{"RCPT TO:<sales@logs.test>", "250"}, [2]string{"DATA", "354"})
	got := c.smtp("Subject: where\r\n\r\nhi\r\n.")
	m := queuedAs.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("MX end of DATA: %q, want 250 naming the ID", got)
	}
	mxID := m[1]
	c.smtp("QUIT")

	// LMTP: each recipient's 250 names the transaction's ID.
	l := qaSMTP(t, srv.addrs["lmtp"])
	l.dialog([2]string{"LHLO client.test", "250"}, [2]string{"MAIL FROM:<x@elsewhere.test>", "250"},
		[2]string{"RCPT TO:<sales@logs.test>", "250"}, [2]string{"RCPT TO:<erin@logs.test>", "250"},
		[2]string{"DATA", "354"})
	saved := regexp.MustCompile(`^250 2\.0\.0 <(\S+)> OK: queued as (\S+)$`)
	var lmtpID string
	for i, got := range []string{l.smtp("Subject: by lmtp\r\n\r\nhi\r\n."), l.reply()} {
		m := saved.FindStringSubmatch(got)
		if m == nil || m[1] != []string{"sales@logs.test", "erin@logs.test"}[i] || (i > 0 && m[2] != lmtpID) {
			t.Fatalf("LMTP status %d: %q, want 250 naming the recipient and one ID", i, got)
		}
		lmtpID = m[2]
	}
	l.smtp("QUIT")

	// Submission: to the remote domain.
	s := qaDial(t, srv.addrs["submissions"], true)
	s.reply()
	s.dialog([2]string{"EHLO client.test", "250"},
		[2]string{"AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00erin@logs.test\x00pw-of-erin-1234")), "235"},
		[2]string{"MAIL FROM:<erin@logs.test>", "250"}, [2]string{"RCPT TO:<bob@remote.test>", "250"},
		[2]string{"DATA", "354"})
	got = s.smtp("Subject: out\r\n\r\nhi\r\n.")
	m = queuedAs.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("submission end of DATA: %q, want 250 naming the ID", got)
	}
	subID := m[1]
	s.smtp("QUIT")

	// Logins over IMAP and POP3.
	i := qaDial(t, srv.addrs["imaps"], true)
	i.line()
	if _, done := i.imap("LOGIN erin@logs.test pw-of-erin-1234"); !strings.HasPrefix(done, "OK") {
		t.Fatalf("IMAP LOGIN: %s", done)
	}
	p := qaDial(t, srv.addrs["pop3s"], true)
	p.line()
	p.pop("USER erin@logs.test")
	if r := p.pop("PASS pw-of-erin-1234"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3 PASS: %s", r)
	}

	// The queue works in the background: its list empties once the
	// remote server took the message (each command is a round trip).
	deadline := time.Now().Add(20 * time.Second)
	for strings.Contains(srv.admin(t, "", "queue", "list"), "bob@remote.test") && time.Now().Before(deadline) {
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("server exit: %v", err)
	}
	lines := logLines(t, srv.logs.String())

	del := withValue(withValue(lines, "id", mxID), "msg", "delivered")
	if len(del) != 1 || del[0]["rcpt"] != "sales@logs.test" {
		t.Fatalf("delivery line for %s: %v", mxID, del)
	}
	if to, _ := del[0]["to"].([]any); len(to) != 1 || to[0] != "erin@logs.test:INBOX" {
		t.Errorf("alias delivered to %v, want [erin@logs.test:INBOX]", del[0]["to"])
	}

	del = withValue(withValue(lines, "id", lmtpID), "msg", "delivered")
	if len(del) != 2 || del[0]["rcpt"] == del[1]["rcpt"] {
		t.Fatalf("delivery lines for LMTP %s: %v", lmtpID, del)
	}
	if sum := withValue(withValue(lines, "id", lmtpID), "msg", "message delivered"); len(sum) != 1 || sum[0]["role"] != "lmtp" {
		t.Errorf("LMTP transaction lines for %s: %v", lmtpID, sum)
	}

	routed := withValue(withValue(lines, "id", subID), "msg", "delivered")
	if len(routed) != 1 {
		t.Fatalf("routing line for %s: %v", subID, routed)
	}
	qm := regexp.MustCompile(`^bob@remote\.test:queue=(\S+)$`)
	to, _ := routed[0]["to"].([]any)
	if len(to) != 1 || qm.FindStringSubmatch(to[0].(string)) == nil {
		t.Fatalf("submission routed to %v, want the queue ID", routed[0]["to"])
	}
	att := withValue(withValue(lines, "txn", subID), "msg", "queue: delivery attempt")
	if len(att) != 1 {
		t.Fatalf("queue attempts for %s: %v", subID, att)
	}
	a := att[0]
	host, _, _ := net.SplitHostPort(mx)
	if a["rcpt"] != "bob@remote.test" || a["status"] != "sent" || a["remote"] != "127.0.0.1["+host+"]" ||
		a["reply"] != "2.0.0 Ok: queued as REMOTE42" || a["tls"] != "" {
		t.Errorf("attempt line: %v", a)
	}
	if "bob@remote.test:queue="+a["id"].(string) != to[0] {
		t.Errorf("queue ID %v is not the one the routing line names (%v)", a["id"], to[0])
	}

	for _, msg := range []string{"imap: login", "pop3: login"} {
		l := withValue(lines, "msg", msg)
		if len(l) != 1 || l[0]["user"] != "erin@logs.test" || l[0]["tls"] != true ||
			!strings.HasPrefix(l[0]["remote"].(string), "127.0.0.1:") || l[0]["method"] == "" {
			t.Errorf("%s lines: %v", msg, l)
		}
	}
}

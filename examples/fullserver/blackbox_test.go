package main

import (
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/interop"
)

// TestBlackBox builds the binary and uses it as an administrator would:
// start it on a fresh data directory, add a domain and a user with the
// admin commands while it runs, send through submission with swaks
// (STARTTLS + AUTH), read with Python's imaplib and poplib, check the
// metrics counted it, then SIGTERM and expect exit status 0.
func TestBlackBox(t *testing.T) {
	t.Parallel()
	swaks := interop.Program(t, "swaks")
	python := interop.Program(t, "python3")
	bin := qaBinary(t)
	srv := qaStart(t, bin, qaConfig(t, t.TempDir(), "[log]\nformat = \"json\""))
	addrs := srv.addrs
	admin := func(stdin string, args ...string) string { t.Helper(); return srv.admin(t, stdin, args...) }
	admin("", "domain", "add", "blackbox.test")
	admin("s3cret-pass\n", "user", "add", "carol@blackbox.test")

	out, err := exec.Command(swaks, "--server", addrs["submission"], "--tls",
		"--auth", "PLAIN", "--auth-user", "carol@blackbox.test", "--auth-password", "s3cret-pass",
		"--from", "carol@blackbox.test", "--to", "carol@blackbox.test",
		"--header", "Subject: black box", "--body", "through the front door").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}

	script := `
import imaplib, poplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ih, ip, ph, pp = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
m = imaplib.IMAP4(ih, ip); m.starttls(ssl_context=ctx); m.login("carol@blackbox.test", "s3cret-pass")
typ, data = m.select("INBOX"); assert typ == "OK" and data[0] == b"1", (typ, data)
typ, data = m.fetch("1", "(BODY.PEEK[])"); body = data[0][1]
assert b"Subject: black box" in body and b"through the front door" in body, body
m.logout()
p = poplib.POP3(ph, pp); p.stls(context=ctx); p.user("carol@blackbox.test"); p.pass_("s3cret-pass")
count, size = p.stat(); assert count == 1, count
resp, lines, octets = p.retr(1); assert b"through the front door" in b"\r\n".join(lines)
p.quit()
print("read-ok")
`
	split := func(a string) (string, string) { i := strings.LastIndexByte(a, ':'); return a[:i], a[i+1:] }
	ih, ip := split(addrs["imap"])
	ph, pp := split(addrs["pop3"])
	out, err = exec.Command(python, "-c", script, ih, ip, ph, pp).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "read-ok") {
		t.Fatalf("python imaplib/poplib: %v\n%s", err, out)
	}

	// Mail for another domain waits in the queue (its MX cannot be looked
	// up); the queue commands act on the running server's queue.
	out, err = exec.Command(swaks, "--server", addrs["submission"], "--tls",
		"--auth", "LOGIN", "--auth-user", "carol@blackbox.test", "--auth-password", "s3cret-pass",
		"--from", "carol@blackbox.test", "--to", "dave@elsewhere.test").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks to a remote domain: %v\n%s", err, out)
	}
	list := admin("", "queue", "list")
	// As postqueue -p: ID, size, arrival, sender; the pending recipient
	// below, under the reply that deferred it once there is one.
	idm := regexp.MustCompile(`(?m)^([^\s*!]+)[*!]?\s+\d+ .{20}  carol@blackbox.test\n(\(.*\)\n)?\s+dave@elsewhere.test\n`).FindStringSubmatch(list)
	if idm == nil {
		t.Fatalf("queued message not listed:\n%s", list)
	}
	admin("", "queue", "hold", idm[1])
	if list := admin("", "queue", "list"); !strings.Contains(list, "\n"+idm[1]+"! ") {
		t.Fatalf("hold through the running server not seen:\n%s", list)
	}

	// One delivery over LMTP, and one message refused at the end of DATA
	// (a bare LF before the final dot, the SMTP-smuggling shape).
	lmtpScript := `
import smtplib, socket, sys
host, port, mxhost, mxport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
l = smtplib.LMTP(host, port); l.sendmail("x@elsewhere.test", ["carol@blackbox.test"], "Subject: lmtp\r\n\r\nvia LMTP\r\n"); l.quit()
s = socket.create_connection((mxhost, mxport)); f = s.makefile("rb")
def cmd(line):
    if line is not None: s.sendall(line)
    r = f.readline()
    while r[3:4] == b"-": r = f.readline()
    return r
cmd(None); cmd(b"EHLO x\r\n"); cmd(b"MAIL FROM:<x@elsewhere.test>\r\n"); cmd(b"RCPT TO:<carol@blackbox.test>\r\n"); cmd(b"DATA\r\n")
r = cmd(b"Subject: smuggle\r\n\r\nhi\n.\r\nMAIL FROM:<a@b>\r\n.\r\n")
assert r.startswith(b"5"), r
print("lmtp-ok")
`
	lh, lp := split(addrs["lmtp"])
	mh, mp := split(addrs["mx"])
	out, err = exec.Command(python, "-c", lmtpScript, lh, lp, mh, mp).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lmtp-ok") {
		t.Fatalf("python LMTP and smuggling: %v\n%s", err, out)
	}

	resp, err := http.Get("http://" + addrs["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"mailagent_messages_received_total 3",
		"mailagent_messages_delivered_total 2",
		`mailagent_messages_rejected_total{reason="message_content"} 1`,
		"mailagent_queue_attempts_deferred_total 1",
		`mailagent_connections_total{protocol="submission"} 2`,
		`mailagent_connections_total{protocol="imap"} 1`,
		`mailagent_connections_total{protocol="pop3"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}

	if err := srv.stop(t); err != nil {
		t.Fatalf("server exit after SIGTERM: %v", err)
	}
	if !strings.Contains(srv.logs.String(), `"msg":"message delivered"`) {
		t.Errorf("no JSON delivery log line:\n%s", srv.logs.String())
	}
}

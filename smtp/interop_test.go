package smtp

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop"
	"github.com/mailagent/mailagent/internal/interop/postfixtest"
	"github.com/mailagent/mailagent/internal/unixsock"
)

func TestInteropSwaks(t *testing.T) {
	t.Parallel()
	swaks := interop.Program(t, "swaks")
	st := newTestStack(t)
	addr, _ := st.serve(st.options(Submission))
	host, port, _ := net.SplitHostPort(addr)
	for i, mech := range []string{"LOGIN", "PLAIN"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, swaks,
			"--server", host, "--port", port, "--tls",
			"--auth", mech, "--auth-user", "alice@local.example", "--auth-password", testPassword,
			"--from", "alice@local.example", "--to", "bob@local.example",
			"--header", "Subject: swaks "+mech, "--body", "sent by swaks",
			"--timeout", "30").CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("swaks %s: %v\n%s", mech, err, out)
		}
		got := st.messages("bob@local.example", "")
		if len(got) != i+1 {
			t.Fatalf("after AUTH %s bob has %d messages\n%s", mech, len(got), out)
		}
		found := false
		for _, m := range got {
			found = found || strings.Contains(m, "Subject: swaks "+mech) &&
				strings.Contains(m, "with ESMTPSA") && strings.Contains(m, "sent by swaks")
		}
		if !found {
			t.Fatalf("swaks %s message not found in %q", mech, got)
		}
	}
}

// TestInteropPostfix runs a private Postfix instance on loopback that
// hands its virtual mailbox domain to our LMTP server and relays
// everything else to our MX (with STARTTLS), as the seed installation's
// Postfix would, and checks that both kinds of mail land in the Maildir.
func TestInteropPostfix(t *testing.T) {
	t.Parallel()
	postfixtest.Check(t)
	st := newTestStack(t)
	lmtpAddr, _ := st.serve(st.options(LMTP))
	mxAddr, _ := st.serve(st.options(MX))
	mxHost, mxPort, _ := net.SplitHostPort(mxAddr)
	pf := postfixtest.Start(t, postfixtest.Options{
		Main: fmt.Sprintf(`virtual_mailbox_domains = local.example
virtual_mailbox_maps = texthash:%s/vmailbox
virtual_alias_maps =
virtual_transport = lmtp:inet:%s
relayhost = [%s]:%s
smtp_tls_security_level = may
default_transport = smtp
relay_transport = smtp
`, "$config_directory", lmtpAddr, mxHost, mxPort),
		Services: "lmtp      unix  -       -       n       -       -       lmtp\n",
		Files:    map[string]string{"vmailbox": "alice@local.example OK\nbob@local.example OK\n"},
	})

	c := dial(t, "tcp", pf.SMTPD)
	c.run(`
		S: 220
		C: EHLO client.test
		S: 250
		C: MAIL FROM:<sender@postfix.test>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: DATA
		S: 354
		R: "Subject: via postfix lmtp\r\n\r\nover LMTP\r\n.\r\n"
		S: 250
		C: MAIL FROM:<sender@postfix.test>
		S: 250
		C: RCPT TO:<carol@other.example>
		S: 250
		C: DATA
		S: 354
		R: "Subject: via postfix relayhost\r\n\r\nover SMTP\r\n.\r\n"
		S: 250
		C: QUIT
		S: 221`)

	deadline := time.Now().Add(90 * time.Second)
	check := func(user, subject, proto string) {
		t.Helper()
		for {
			for _, m := range st.messages(user, "") {
				if strings.Contains(m, "Subject: "+subject) {
					if !strings.Contains(m, "from postfix.test") || !strings.Contains(m, proto) {
						t.Errorf("%s: unexpected trace fields:\n%s", user, m)
					}
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q did not reach %s; postfix log:\n%s", subject, user, pf.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	check("alice@local.example", "via postfix lmtp", "with LMTP")
	check("carol@other.example", "via postfix relayhost", "with ESMTPS")
}

// TestInteropPostfixLMTPUnix: a Postfix in front hands its virtual
// mailbox domain to our LMTP server over a Unix socket
// (virtual_transport = lmtp:unix:PATH), the replacement for the seed's
// pipe to Dovecot's deliver. The socket is Postfix's alone: mode 0600,
// owned by user postfix.
func TestInteropPostfixLMTPUnix(t *testing.T) {
	t.Parallel()
	postfixtest.Check(t)
	st := newTestStack(t)
	dir, err := os.MkdirTemp("", "lmtp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // Postfix's lmtp runs as postfix
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "mailagent")
	l, err := unixsock.Listen(sock, unixsock.Options{Mode: 0o600, Owner: "postfix"})
	if err != nil {
		t.Fatal(err)
	}
	st.serveOn(st.options(LMTP), l)
	pf := postfixtest.Start(t, postfixtest.Options{
		Main: fmt.Sprintf(`virtual_mailbox_domains = local.example
virtual_mailbox_maps = texthash:%s/vmailbox
virtual_alias_maps =
virtual_transport = lmtp:unix:%s
`, "$config_directory", sock),
		Services: "lmtp      unix  -       -       n       -       -       lmtp\n",
		Files:    map[string]string{"vmailbox": "alice@local.example OK\n"},
	})
	dial(t, "tcp", pf.SMTPD).run(`
		S: 220
		C: EHLO client.test
		S: 250
		C: MAIL FROM:<sender@postfix.test>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: DATA
		S: 354
		R: "Authentication-Results: mx.test; dkim=pass header.d=forged.example\r\nSubject: via postfix lmtp unix\r\n\r\nover a socket\r\n.\r\n"
		S: 250
		C: QUIT
		S: 221`)
	deadline := time.Now().Add(90 * time.Second)
	for {
		if got := st.messages("alice@local.example", ""); len(got) > 0 {
			m := got[0]
			if !strings.Contains(m, "Subject: via postfix lmtp unix") || !strings.Contains(m, "with LMTP") ||
				strings.Contains(m, "forged.example") {
				t.Fatalf("delivered over the socket:\n%s", m)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message did not arrive; postfix log:\n%s", pf.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

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
)

func TestInteropSwaks(t *testing.T) {
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
	postfix := interop.Program(t, "postfix")
	if os.Geteuid() != 0 {
		interop.Require(t, "the Postfix interop test needs root to start a Postfix master")
	}
	st := newTestStack(t)
	lmtpAddr, _ := st.serve(st.options(LMTP))
	mxAddr, _ := st.serve(st.options(MX))

	// Postfix's daemons run as user postfix and must reach the spool.
	root, err := os.MkdirTemp("", "mailagent-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	etc, spool, data := filepath.Join(root, "etc"), filepath.Join(root, "spool"), filepath.Join(root, "data")
	for _, d := range []string{etc, spool, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "postfix", data).CombinedOutput(); err != nil {
		t.Fatalf("chown postfix: %v %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	smtpdAddr := l.Addr().String()
	l.Close()
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s
data_directory = %[2]s
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = %[3]s
maillog_file = %[3]s/postfix.log
myhostname = postfix.test
mydomain = postfix.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = local.example
virtual_mailbox_maps = texthash:%[4]s/vmailbox
virtual_alias_maps =
virtual_transport = lmtp:inet:%[5]s
relayhost = [%[6]s]:%[7]s
smtp_tls_security_level = may
default_transport = smtp
relay_transport = smtp
biff = no
`, spool, data, root, etc, lmtpAddr, strings.Split(mxAddr, ":")[0], strings.Split(mxAddr, ":")[1])
	masterCF := smtpdAddr + ` inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
`
	for name, content := range map[string]string{
		"main.cf":   mainCF,
		"master.cf": masterCF,
		"vmailbox":  "alice@local.example OK\nbob@local.example OK\n",
	} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, postfix, append([]string{"-c", etc}, args...)...).CombinedOutput()
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(root, "postfix.log"))
			t.Fatalf("postfix %v: %v\n%s\n%s", args, err, out, log)
		}
	}
	run("check")
	run("start")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = exec.CommandContext(ctx, postfix, "-c", etc, "stop").Run()
	})

	var c *client
	waitFor(t, func() bool {
		conn, err := net.Dial("tcp", smtpdAddr)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
	c = dial(t, "tcp", smtpdAddr)
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
				log, _ := os.ReadFile(filepath.Join(root, "postfix.log"))
				t.Fatalf("%q did not reach %s; postfix log:\n%s", subject, user, log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	check("alice@local.example", "via postfix lmtp", "with LMTP")
	check("carol@other.example", "via postfix relayhost", "with ESMTPS")
}

package queue

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A private Postfix instance, for the benchmark baseline and the smart
// host interop test. Debian's postfix package; nothing of /etc/postfix is
// used but its meta files.

type postfixInstance struct {
	root   string
	smtpd  string
	master string
}

const qmgrLine = "qmgr      unix  n       -       n       300     1       qmgr"

const postfixMain = `compatibility_level = 3.6
queue_directory = @ROOT@/spool
data_directory = @ROOT@/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = @ROOT@
maillog_file = @ROOT@/postfix.log
myhostname = mta.postfix-bench.invalid
mydomain = postfix-bench.invalid
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:@SINK@
smtp_tls_security_level = none
default_destination_concurrency_limit = @CONNS@
initial_destination_concurrency = @CONNS@
in_flow_delay = 0
biff = no
@MAIN@
`

const postfixMaster = `@SMTPD@
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
@QMGR@
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// postfixConfig describes a private Postfix instance relaying everything
// to a receiver on loopback.
type postfixConfig struct {
	sinkPort int
	conns    int
	// main is added to main.cf; smtpd to the smtpd line of master.cf.
	main  string
	smtpd string
}

// postfixMissing says why no private Postfix instance can run here, or "".
func postfixMissing() string {
	if _, err := exec.LookPath("postfix"); err != nil {
		return "postfix not installed (apt-get install postfix)"
	}
	if os.Geteuid() != 0 {
		return "a private Postfix instance needs root"
	}
	return ""
}

// startPostfix runs a Postfix instance in a temporary directory until the
// test ends; its smtpd listens on a free loopback port.
func startPostfix(tb testing.TB, cfg postfixConfig) *postfixInstance {
	root := tb.TempDir()
	openToMailUser(root)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	smtpd := l.Addr().String()
	l.Close()
	pf := &postfixInstance{root: root, smtpd: smtpd}
	if cfg.conns == 0 {
		cfg.conns = 20
	}
	rep := strings.NewReplacer("@ROOT@", root, "@SINK@", fmt.Sprint(cfg.sinkPort), "@CONNS@", fmt.Sprint(cfg.conns),
		"@SMTPD@", smtpd+" inet n - n - - smtpd"+cfg.smtpd, "@QMGR@", qmgrLine, "@MAIN@", cfg.main)
	pf.master = rep.Replace(postfixMaster)
	for _, d := range []string{"etc", "spool", "data"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "etc", "main.cf"), []byte(rep.Replace(postfixMain)), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "master.cf"), []byte(pf.master), 0o644)
	if out, err := exec.Command("chown", "postfix", filepath.Join(root, "data")).CombinedOutput(); err != nil {
		tb.Fatalf("chown: %v %s", err, out)
	}
	pf.postfix(tb, "postfix", "start")
	tb.Cleanup(func() { exec.Command("postfix", "-c", filepath.Join(root, "etc"), "stop").Run() })
	waitListening(tb, "postfix", smtpd)
	return pf
}

func (pf *postfixInstance) postfix(tb testing.TB, cmd string, args ...string) {
	out, err := exec.Command(cmd, append([]string{"-c", filepath.Join(pf.root, "etc")}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %v: %v %s", cmd, args, err, out)
	}
}

// setQmgr runs or stops the queue manager, which moves messages from
// the incoming queue to delivery.
func (pf *postfixInstance) setQmgr(tb testing.TB, on bool) {
	line := qmgrLine
	if !on {
		line = "#" + qmgrLine
	}
	master := strings.Replace(pf.master, qmgrLine, line, 1)
	if err := os.WriteFile(filepath.Join(pf.root, "etc", "master.cf"), []byte(master), 0o644); err != nil {
		tb.Fatal(err)
	}
	pf.postfix(tb, "postfix", "reload")
}

// waitQueued waits until n messages sit in the incoming queue.
func (pf *postfixInstance) waitQueued(tb testing.TB, n int) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		count := 0
		filepath.WalkDir(filepath.Join(pf.root, "spool", "incoming"), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				count++
			}
			return nil
		})
		if count >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("postfix queued %d of %d", count, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

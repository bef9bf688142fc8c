// Package postfixtest runs a private Postfix for interop tests: its own
// main.cf, master.cf, spool and data directories in a test directory, its
// smtpd on a free loopback port, stopped when the test ends. Only the
// programs and meta files of the installed Postfix are used, none of its
// configuration. A missing Postfix (or a test not run as root, which the
// Postfix master needs) ends the test through interop.Require: a skip, or
// a failure under MAILAGENT_INTEROP=1.
package postfixtest

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop"
)

// Options says what the Postfix instance does beyond accepting mail from
// loopback on its smtpd.
type Options struct {
	// Main is appended to main.cf; a parameter set there replaces the
	// base configuration's, and a later setting in Main an earlier one.
	Main string
	// SMTPDArgs is appended to the smtpd line of master.cf: " -o
	// name=value" overrides.
	SMTPDArgs string
	// Services are more master.cf lines: lmtp, flush, proxywrite...
	Services string
	// Files are written to the configuration directory (Etc), by
	// name: lookup tables such as a vmailbox file.
	Files map[string]string
}

// Postfix is a running instance.
type Postfix struct {
	// Root holds etc/ (Etc), spool/ (Spool), data/ and postfix.log.
	Root, Etc, Spool string
	// SMTPD is the smtpd's TCP address ("127.0.0.1:port").
	SMTPD string
	// master is master.cf as written by Start.
	master string
}

// baseMain is main.cf before Options.Main: a null client for local
// mail, relaying for mynetworks (loopback).
const baseMain = `compatibility_level = 3.6
queue_directory = %[1]s/spool
data_directory = %[1]s/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = %[1]s
maillog_file = %[1]s/postfix.log
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
biff = no
`

// baseServices is master.cf after the smtpd line and before
// Options.Services: what queueing and relaying over SMTP need.
const baseServices = `tlsmgr    unix  -       -       n       1000?   1       tlsmgr
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
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// Check ends the test through interop.Require unless a private Postfix
// can run here: the postfix program, root, and the postfix user and
// postdrop group. Start checks too; a test calls Check first to skip
// before starting other peers.
func Check(t testing.TB) {
	t.Helper()
	interop.Program(t, "postfix")
	if os.Geteuid() != 0 {
		interop.Require(t, "%s", "a private Postfix needs root to start its master")
	}
	if _, err := user.Lookup("postfix"); err != nil {
		interop.Require(t, "no postfix user: %v", err)
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		interop.Require(t, "no postdrop group: %v", err)
	}
}

// Start writes the configuration, runs "postfix check" and "postfix
// start" and returns once the smtpd accepts connections. The instance is
// stopped, and its log shown if the test failed, in t.Cleanup.
func Start(t testing.TB, opts Options) *Postfix {
	t.Helper()
	Check(t)
	root := t.TempDir()
	// t.TempDir makes Root and its parents below the temporary
	// directory private; Postfix's daemons run as user postfix. The
	// temporary directory itself keeps its mode (and sticky bit).
	for d := root; strings.HasPrefix(d, os.TempDir()+string(filepath.Separator)); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	p := &Postfix{Root: root, Etc: filepath.Join(root, "etc"), Spool: filepath.Join(root, "spool")}
	data := filepath.Join(root, "data")
	for _, d := range []string{p.Etc, p.Spool, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "postfix", data).CombinedOutput(); err != nil {
		t.Fatalf("chown postfix %s: %v %s", data, err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.SMTPD = l.Addr().String()
	l.Close()
	p.master = p.SMTPD + " inet n - n - - smtpd" + opts.SMTPDArgs + "\n" + baseServices + opts.Services
	files := map[string]string{
		"main.cf":   mainCF(fmt.Sprintf(baseMain, root), opts.Main),
		"master.cf": p.master,
	}
	maps.Copy(files, opts.Files)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := os.WriteFile(filepath.Join(p.Etc, name), []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.Run(t, "postfix", "check")
	p.Run(t, "postfix", "start")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, interop.Program(t, "postfix"), "-c", p.Etc, "stop").CombinedOutput(); err != nil {
			t.Errorf("postfix stop: %v %s", err, out)
		}
		if t.Failed() {
			t.Logf("postfix.log:\n%s", p.Log())
		}
	})
	interop.WaitListening(t, "postfix", nil, p.SMTPD)
	return p
}

// mainCF is base then extra with each parameter only at its last
// setting: Postfix warns of every parameter set twice.
func mainCF(base, extra string) string {
	lines := strings.SplitAfter(base+extra, "\n")
	last := map[string]int{}
	for i, l := range lines {
		if name := param(l); name != "" {
			last[name] = i
		}
	}
	var b strings.Builder
	for i, l := range lines {
		if name := param(l); name == "" || last[name] == i {
			b.WriteString(l)
		}
	}
	return b.String()
}

// param is the parameter main.cf line l sets, or "" (a comment, a blank
// or continuation line).
func param(l string) string {
	if l == "" || l[0] == ' ' || l[0] == '\t' || l[0] == '#' {
		return ""
	}
	name, _, ok := strings.Cut(l, "=")
	if !ok {
		return ""
	}
	return strings.TrimSpace(name)
}

// Run runs a Postfix command (postfix, postqueue, postsuper...) on this
// instance, with "-c Etc" before args, and returns its output. A failure
// or a run longer than a minute fails the test.
func (p *Postfix) Run(t testing.TB, cmd string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, interop.Program(t, cmd), append([]string{"-c", p.Etc}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s\npostfix.log:\n%s", cmd, args, err, out, p.Log())
	}
	return string(out)
}

// SetService comments out (on false) or restores the master.cf line of
// service name and reloads Postfix: stopping qmgr, for one, leaves new
// mail in the incoming queue.
func (p *Postfix) SetService(t testing.TB, name string, on bool) {
	t.Helper()
	lines := strings.Split(p.master, "\n")
	found := false
	for i, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			found = true
			if !on {
				lines[i] = "#" + l
			}
		}
	}
	if !found {
		t.Fatalf("postfixtest: no service %q in master.cf", name)
	}
	if err := os.WriteFile(filepath.Join(p.Etc, "master.cf"), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Run(t, "postfix", "reload")
}

// Log returns postfix.log so far.
func (p *Postfix) Log() string {
	log, _ := os.ReadFile(filepath.Join(p.Root, "postfix.log"))
	return string(log)
}

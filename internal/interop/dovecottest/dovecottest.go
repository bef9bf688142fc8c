// Package dovecottest runs a private Dovecot for interop tests: its own
// dovecot.conf and passwd-file in a test directory, its listeners on free
// loopback ports and Unix sockets in that directory, stopped when the test
// ends. A missing Dovecot (or a test not run as root, which Dovecot's
// master needs to switch to the mail user) ends the test through
// interop.Require: a skip, or a failure under MAILAGENT_INTEROP=1.
package dovecottest

import (
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop"
)

// Options says what the Dovecot instance serves.
type Options struct {
	// Root is the instance's directory: dovecot.conf, passwd, dovecot.log,
	// run/, state/ and the sockets. Empty means a new t.TempDir(). Root,
	// and its parents up to the temporary directory, are opened to the
	// mail user (mode 0755).
	Root string
	// Protocols lists what Dovecot listens for: any of "imap", "pop3"
	// and "lmtp". None runs only the auth service (Postfix's
	// smtpd_sasl_type = dovecot).
	Protocols []string
	// Users are the passwd-file's accounts: address to plain password.
	Users map[string]string
	// MailUser is the system user the mail processes run as and who
	// owns the mail (default "nobody").
	MailUser string
	// MailLocation is Dovecot's mail_location (default
	// "maildir:~/Maildir").
	MailLocation string
	// Home is every user's home, in Dovecot's variables (default
	// Root/mail/%d/%n).
	Home string
	// Separator is the INBOX namespace's hierarchy separator (default
	// ".", Maildir++'s).
	Separator string
	// Config is appended to dovecot.conf: plugins, protocol blocks,
	// more namespace inbox settings.
	Config string
}

// Dovecot is a running instance.
type Dovecot struct {
	Root string
	// IMAP, POP3 and LMTP are the TCP addresses of the protocols asked
	// for ("host:port"), empty for the others.
	IMAP, POP3, LMTP string
	// LMTPSocket is the LMTP Unix socket when "lmtp" was asked for;
	// AuthSocket is the auth service's socket, always there.
	LMTPSocket, AuthSocket string
	// UID and GID are the mail user's.
	UID, GID int
}

// packages names the Debian package of each protocol's server.
var packages = map[string]string{"imap": "dovecot-imapd", "pop3": "dovecot-pop3d", "lmtp": "dovecot-lmtpd"}

// Start writes the configuration, starts "dovecot -F" and returns once
// every listener accepts connections. The instance is stopped, and its
// log shown if the test failed, in t.Cleanup.
func Start(t testing.TB, opts Options) *Dovecot {
	t.Helper()
	bin := interop.Program(t, "dovecot")
	for _, p := range opts.Protocols {
		pkg, ok := packages[p]
		if !ok {
			t.Fatalf("dovecottest: unknown protocol %q", p)
		}
		if _, err := os.Stat("/usr/lib/dovecot/" + p); err != nil {
			interop.Require(t, "Dovecot's %s server is not installed (apt-get install %s)", p, pkg)
		}
	}
	if os.Geteuid() != 0 {
		interop.Require(t, "%s", "a private Dovecot needs root to switch to the mail user")
	}
	if opts.MailUser == "" {
		opts.MailUser = "nobody"
	}
	mu, err := user.Lookup(opts.MailUser)
	if err != nil {
		interop.Require(t, "no %s user for Dovecot's mail processes: %v", opts.MailUser, err)
	}
	d := &Dovecot{Root: opts.Root}
	d.UID, _ = strconv.Atoi(mu.Uid)
	d.GID, _ = strconv.Atoi(mu.Gid)
	if d.Root == "" {
		d.Root = t.TempDir()
	}
	// t.TempDir makes Root and its parents below the temporary
	// directory private; the mail processes must reach below Root.
	os.Chmod(d.Root, 0o755)
	for p := filepath.Dir(d.Root); strings.HasPrefix(p, os.TempDir()+string(filepath.Separator)); p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	for _, dir := range []string{"run", "state"} {
		if err := os.MkdirAll(filepath.Join(d.Root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var passwd strings.Builder
	for _, u := range slices.Sorted(maps.Keys(opts.Users)) {
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s::::::\n", u, opts.Users[u])
	}
	write(t, filepath.Join(d.Root, "passwd"), passwd.String())
	conf, waits := d.config(t, opts)
	write(t, filepath.Join(d.Root, "dovecot.conf"), conf)

	cmd := exec.Command(bin, "-F", "-c", filepath.Join(d.Root, "dovecot.conf"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		close(exited) // the status is read once; the close wakes any other reader
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			d.logTo(t)
		}
	})
	interop.WaitListening(t, "dovecot", exited, waits...)
	return d
}

// config returns dovecot.conf and the addresses to wait for.
func (d *Dovecot) config(t testing.TB, opts Options) (string, []string) {
	t.Helper()
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&opts.MailLocation, "maildir:~/Maildir")
	def(&opts.Home, d.Root+"/mail/%d/%n")
	def(&opts.Separator, ".")
	protocols := "none"
	if len(opts.Protocols) > 0 {
		protocols = strings.Join(opts.Protocols, " ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, `instance_name = mailagent-test
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = %[2]s
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = %[3]s
first_valid_uid = 1
namespace inbox {
  inbox = yes
  separator = %[4]s
  prefix =
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%Lu %[1]s/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%%Lu %[1]s/passwd
  override_fields = uid=%[5]d gid=%[6]d home=%[7]s
}
service auth {
  unix_listener %[1]s/auth {
    mode = 0666
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
`, d.Root, protocols, opts.MailLocation, opts.Separator, d.UID, d.GID, opts.Home)
	d.AuthSocket = filepath.Join(d.Root, "auth")
	waits := []string{d.AuthSocket}
	for _, p := range opts.Protocols {
		addr := freePort(t)
		_, port, _ := net.SplitHostPort(addr)
		waits = append(waits, addr)
		switch p {
		case "imap":
			d.IMAP = addr
			fmt.Fprintf(&b, "service imap-login {\n  inet_listener imap {\n    address = 127.0.0.1\n    port = %s\n  }\n  inet_listener imaps {\n    port = 0\n  }\n}\n", port)
		case "pop3":
			d.POP3 = addr
			fmt.Fprintf(&b, "service pop3-login {\n  inet_listener pop3 {\n    address = 127.0.0.1\n    port = %s\n  }\n  inet_listener pop3s {\n    port = 0\n  }\n}\n", port)
			// Tests open many sessions from one address.
			b.WriteString("protocol pop3 {\n  mail_max_userip_connections = 100\n}\n")
		case "lmtp":
			d.LMTP = addr
			d.LMTPSocket = filepath.Join(d.Root, "lmtp.sock")
			waits = append(waits, d.LMTPSocket)
			fmt.Fprintf(&b, "service lmtp {\n  inet_listener lmtp {\n    address = 127.0.0.1\n    port = %s\n  }\n  unix_listener %s {\n    mode = 0666\n  }\n}\n", port, d.LMTPSocket)
		}
	}
	b.WriteString(opts.Config)
	return b.String(), waits
}

// ChownTree gives every file and directory below path to the mail user,
// so that Dovecot's mail processes can use mail written by the test.
func (d *Dovecot) ChownTree(t testing.TB, path string) {
	t.Helper()
	err := filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, d.UID, d.GID)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (d *Dovecot) logTo(t testing.TB) {
	log, _ := os.ReadFile(filepath.Join(d.Root, "dovecot.log"))
	t.Logf("dovecot.log:\n%s", log)
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func write(t testing.TB, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

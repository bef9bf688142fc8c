package queue

import (
	"context"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/interop"
)

const dovecotConf = `instance_name = mailagent-test
base_dir = @ROOT@/run
state_dir = @ROOT@/state
log_path = @ROOT@/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
mail_location = maildir:~/Maildir
first_valid_uid = @UID@
default_internal_user = dovecot
default_login_user = dovenull
namespace inbox {
  inbox = yes
  separator = /
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu @ROOT@/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%Lu @ROOT@/passwd
  override_fields = uid=@UID@ gid=@GID@ home=@ROOT@/mail/%d/%n
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = @PORT@
  }
  unix_listener @ROOT@/lmtp.sock {
    mode = 0666
  }
}
recipient_delimiter = +
protocol lmtp {
  postmaster_address = postmaster@b.test
}
`

// startDovecot runs a private Dovecot LMTP instance (Debian's
// dovecot-lmtpd) on loopback and a Unix socket; it returns the instance
// root, the TCP address and the socket path.
func startDovecot(t *testing.T) (root, addr, sock string) {
	t.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		interop.Require(t, "%s", "dovecot not installed (apt-get install dovecot-lmtpd)")
	}
	if _, err := os.Stat("/usr/lib/dovecot/lmtp"); err != nil {
		interop.Require(t, "%s", "dovecot-lmtpd not installed")
	}
	if os.Geteuid() != 0 {
		interop.Require(t, "%s", "a private Dovecot instance needs root to switch to the mail user")
	}
	mailUser, err := user.Lookup("mail")
	if err != nil {
		interop.Require(t, "%s", "no mail user: "+err.Error())
	}
	root = t.TempDir()
	openToMailUser(root)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf := strings.NewReplacer("@ROOT@", root, "@UID@", mailUser.Uid, "@GID@", mailUser.Gid, "@PORT@", port).Replace(dovecotConf)
	if err := os.WriteFile(filepath.Join(root, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "passwd"), []byte("bob@b.test:{PLAIN}x::::::\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"run", "state", "mail"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	uid, _ := strconv.Atoi(mailUser.Uid)
	gid, _ := strconv.Atoi(mailUser.Gid)
	os.Chown(filepath.Join(root, "mail"), uid, gid)
	runDovecot(t, bin, root)
	sock = filepath.Join(root, "lmtp.sock")
	waitListening(t, "dovecot", addr, sock)
	return root, addr, sock
}

// TestDovecotLMTP delivers through the LMTP transport into a real Dovecot
// over TCP and a Unix socket: both copies land in bob's Maildir, and the
// unknown recipient gets a notification carrying Dovecot's reply.
func TestDovecotLMTP(t *testing.T) {
	root, addr, sock := startDovecot(t)
	f := newFixture(t, 1, func(o *Options) {
		o.Route = func(ctx context.Context, rcpt string) (string, error) {
			if strings.Contains(rcpt, "+tcp@") {
				return "lmtp:" + addr, nil
			}
			return "lmtp:unix:" + sock, nil
		}
	})
	f.enqueue(t, "alice@a.test", []string{"bob@b.test", "nobody@b.test"}, signed)
	f.enqueue(t, "alice@a.test", []string{"bob+tcp@b.test"}, strings.Replace(signed, "hello", "over tcp", 1))
	f.runDue(t)

	newDir := filepath.Join(root, "mail", "b.test", "bob", "Maildir", "new")
	ents, err := os.ReadDir(newDir)
	if err != nil || len(ents) != 2 {
		t.Fatalf("bob's Maildir/new: %d files, %v", len(ents), err)
	}
	var subjects []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(newDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.Contains(s, "Delivered-To: bob") || !strings.Contains(s, "Hi Bob,") {
			t.Errorf("delivered message:\n%s", s)
		}
		if strings.Contains(s, "Subject: over tcp") {
			subjects = append(subjects, "tcp")
		} else if strings.Contains(s, "Subject: hello") {
			subjects = append(subjects, "unix")
		}
	}
	if len(subjects) != 2 {
		t.Errorf("copies: %v", subjects)
	}
	dsns := f.bounces.all()
	if len(dsns) != 1 {
		t.Fatalf("%d notifications, want one for nobody@b.test", len(dsns))
	}
	r := parseDSN(t, dsns[0].data).recipients[0]
	if r["Final-Recipient"] != "rfc822; nobody@b.test" || !strings.HasPrefix(r["Status"], "5.1.1") || !strings.Contains(r["Diagnostic-Code"], "550") {
		t.Errorf("notification: %+v", r)
	}
	if ids := f.ids(t); len(ids) != 0 {
		t.Errorf("still queued: %v", ids)
	}
}

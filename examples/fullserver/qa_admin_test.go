package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestQAAdminChangesApplyAtOnce runs admin commands next to the running
// binary: each change is in force as soon as the command returns, with no
// SIGHUP and no wait for the directory cache.
func TestQAAdminChangesApplyAtOnce(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	dir := t.TempDir()
	s := qaStart(t, bin, qaConfig(t, dir, ""))
	s.admin(t, "", "domain", "add", "now.test")
	s.admin(t, "first-secret-1\n", "user", "add", "ann@now.test")

	login := func(pass string) string {
		t.Helper()
		c := qaDial(t, s.addrs["imaps"], true)
		c.line()
		_, done := c.imap(`LOGIN "ann@now.test" "` + pass + `"`)
		c.imap("LOGOUT")
		return done
	}
	// The first login puts the user in the server's directory cache.
	if done := login("first-secret-1"); !strings.HasPrefix(done, "OK") {
		t.Fatalf("login with the first password: %s", done)
	}
	s.admin(t, "second-secret-2\n", "user", "passwd", "ann@now.test")
	if done := login("second-secret-2"); !strings.HasPrefix(done, "OK") {
		t.Fatalf("login with the new password right after passwd: %s", done)
	}
	if done := login("first-secret-1"); !strings.HasPrefix(done, "NO") {
		t.Fatalf("login with the old password right after passwd: %s", done)
	}
	s.admin(t, "", "user", "disable", "ann@now.test")
	if done := login("second-secret-2"); !strings.HasPrefix(done, "NO") {
		t.Fatalf("login right after disable: %s", done)
	}
	s.admin(t, "", "user", "enable", "ann@now.test")
	if done := login("second-secret-2"); !strings.HasPrefix(done, "OK") {
		t.Fatalf("login right after enable: %s", done)
	}

	// An alias added while the server runs takes mail at once.
	c := qaSMTP(t, s.addrs["mx"])
	c.dialog([2]string{"EHLO client.test", "250"}, [2]string{"MAIL FROM:<x@remote.test>", "250"},
		[2]string{"RCPT TO:<sales@now.test>", "550"})
	s.admin(t, "", "alias", "add", "sales@now.test", "ann@now.test")
	c.dialog([2]string{"RCPT TO:<sales@now.test>", "250"}, [2]string{"QUIT", "221"})

	// A DKIM key made while the server runs signs the next message.
	s.admin(t, "", "dkim", "keygen", "now.test")
	qaSubmit(t, s.addrs["submissions"], "ann@now.test", "second-secret-2", "ann@now.test", "ann@now.test",
		"From: <ann@now.test>\nTo: <ann@now.test>\nSubject: signed at once\n\nbody\n")
	newDir := filepath.Join(dir, "data", "mail", "now.test", "ann", "Maildir", "new")
	es, err := os.ReadDir(newDir)
	if err != nil || len(es) != 1 {
		t.Fatalf("delivered messages in %s: %v %v", newDir, es, err)
	}
	if raw := qaRead(t, filepath.Join(newDir, es[0].Name())); !strings.Contains(string(raw), "DKIM-Signature:") ||
		!strings.Contains(string(raw), "d=now.test") {
		t.Fatalf("message submitted right after dkim keygen is not signed:\n%s", raw)
	}

	// A quota set while the server runs refuses the next message over it.
	s.admin(t, "", "user", "quota", "ann@now.test", "100", "0")
	out := s.admin(t, "", "user", "quota", "ann@now.test")
	if !strings.Contains(out, "limit: 100 bytes, 0 messages (0: no limit) (from directory)") || !strings.Contains(out, "maildirsize: 100 bytes") {
		t.Fatalf("user quota:\n%s", out)
	}
	c = qaSMTP(t, s.addrs["mx"])
	c.dialog([2]string{"EHLO client.test", "250"}, [2]string{"MAIL FROM:<x@remote.test>", "250"},
		[2]string{"RCPT TO:<ann@now.test>", "552"}, [2]string{"QUIT", "221"})

	p := qaDial(t, s.addrs["pop3s"], true)
	p.line()
	p.pop("USER ann@now.test")
	if l := p.pop("PASS second-secret-2"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("POP3 PASS: %q", l)
	}
	p.pop("QUIT")
	if err := s.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	// IMAP and POP3 logins are logged alike: user, remote address, TLS
	// and method.
	logs := s.logs.String()
	for _, re := range []string{
		`msg="imap: login" session=\S+ remote=127\.0\.0\.1:\d+ user=ann@now\.test tls=true method=LOGIN`,
		`msg="pop3: login" remote=127\.0\.0\.1:\d+ user=ann@now\.test tls=true method=USER`,
	} {
		if !regexp.MustCompile(re).MatchString(logs) {
			t.Errorf("no log line matching %s in:\n%s", re, logs)
		}
	}
}

// TestQAHelp asks the built binary for help the ways people do: each
// prints the usage of what was asked on standard output and exits 0,
// touching no data directory.
func TestQAHelp(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want []string // lines the usage must have
		not  string   // a line it must not have ("" for the whole usage)
	}{
		{[]string{"--help"}, []string{"usage: fullserver", "  migrate [-dsn DSN] [-convert-myisam] [-n]"}, ""},
		{[]string{"-h"}, []string{"  queue list"}, ""},
		{[]string{"help"}, []string{"  user list [DOMAIN]"}, ""},
		{[]string{"help", "queue"}, []string{"  queue show|hold|release|delete ID"}, "  user list [DOMAIN]"},
		{[]string{"user", "--help"}, []string{"  user quota ADDRESS [BYTES MESSAGES]", "Passwords are read from standard input"}, "  queue list"},
		{[]string{"queue", "add", "--help"}, []string{"  queue flush [ID...]"}, "  user list [DOMAIN]"},
		{[]string{"dkim", "keygen", "-h"}, []string{"  dkim keygen DOMAIN"}, "  queue list"},
		{[]string{"-data", filepath.Join(dir, "data"), "user", "add", "--help"}, []string{"  user add|passwd [-force] ADDRESS"}, "  queue list"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Dir = dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() != 0 {
			t.Errorf("fullserver %s: %v, stderr %q", strings.Join(tc.args, " "), err, stderr.String())
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("fullserver %s: no %q in\n%s", strings.Join(tc.args, " "), w, out)
			}
		}
		if tc.not != "" && strings.Contains(string(out), tc.not) {
			t.Errorf("fullserver %s: %q is another command's usage:\n%s", strings.Join(tc.args, " "), tc.not, out)
		}
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Errorf("help created %v", es)
	}
}

// TestQAQueueListShowsDeferral sends a message through a transport to a
// server that defers its recipient: queue list shows the recipient under
// the remote reply, as postqueue -p does, and queue show the host, reply
// and time of the last attempt.
func TestQAQueueListShowsDeferral(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	dir := t.TempDir()
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	attempted := make(chan struct{}, 8)
	go func() {
		for {
			c, err := peer.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				io.WriteString(c, "220 far.test ESMTP\r\n")
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.TrimSpace(l)); {
					case strings.HasPrefix(cmd, "EHLO"):
						io.WriteString(c, "250-far.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n")
					case strings.HasPrefix(cmd, "RCPT"):
						io.WriteString(c, "451 4.2.0 mailbox busy, try later\r\n")
						attempted <- struct{}{}
					case cmd == "QUIT":
						io.WriteString(c, "221 bye\r\n")
						return
					default:
						io.WriteString(c, "250 ok\r\n")
					}
				}
			}()
		}
	}()
	s := qaStart(t, bin, qaConfig(t, dir, ""))
	s.admin(t, "", "domain", "add", "near.test")
	s.admin(t, "pw-of-nina-1\n", "user", "add", "nina@near.test")
	s.admin(t, "", "transport", "set", "far.test", "smtp:["+peer.Addr().String()[:strings.LastIndex(peer.Addr().String(), ":")]+"]"+
		peer.Addr().String()[strings.LastIndex(peer.Addr().String(), ":"):])
	qaSubmit(t, s.addrs["submissions"], "nina@near.test", "pw-of-nina-1", "nina@near.test", "otto@far.test",
		"From: <nina@near.test>\nTo: <otto@far.test>\nSubject: deferred\n\nbody\n")
	select {
	case <-attempted:
	case <-time.After(30 * time.Second):
		bounces, _ := filepath.Glob(filepath.Join(dir, "data", "mail", "near.test", "nina", "Maildir", "new", "*"))
		for _, b := range bounces {
			t.Logf("%s", qaRead(t, b))
		}
		t.Fatalf("no delivery attempt reached the peer; queue:\n%s", s.admin(t, "", "queue", "list"))
	}
	// The attempt's result is written after the peer's reply: wait
	// (bounded) for the queue to record it.
	reason := "(host " + peer.Addr().String()
	var list string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if list = s.admin(t, "", "queue", "list"); strings.Contains(list, reason) {
			break
		}
		runtime.Gosched()
	}
	m := regexp.MustCompile(`(?m)^(\S+?)[*!]?\s+\d+ .{20}  nina@near.test\n\(host \S+ said: 451 4\.2\.0 mailbox busy, try later\)\n\s{40,}otto@far.test\n`).FindStringSubmatch(list)
	if m == nil {
		t.Fatalf("queue list does not show the deferred recipient under its reply:\n%s", list)
	}
	show := s.admin(t, "", "queue", "show", m[1])
	if !regexp.MustCompile(`recipient: otto@far.test queued at \d{4}-\d\d-\d\dT\S+ \(host \S+ said: 451 4\.2\.0 mailbox busy, try later\)`).MatchString(show) {
		t.Fatalf("queue show:\n%s", show)
	}
	// Each attempt on a line of its own: time, the server, its reply.
	if !regexp.MustCompile(`(?m)^  attempt \d{4}-\d\d-\d\dT\S+ 127\.0\.0\.1\[127\.0\.0\.1\]: 451 4\.2\.0 mailbox busy, try later$`).MatchString(show) {
		t.Fatalf("queue show lacks the attempt:\n%s", show)
	}
}

// TestQAStartErrors starts the built binary with a bad listen address and
// with a certificate that is not there: each is refused in one line that
// names the config key, before the data directory is created.
func TestQAStartErrors(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	for _, tc := range []struct{ name, conf, want string }{
		{"listen", "[listen]\nimap = \"127.0.0.1:143x\"\n", `listen.imap = "127.0.0.1:143x": port "143x" is not a port number`},
		{"listen-noport", "[listen]\nmx = \"127.0.0.1\"\n", `listen.mx: "127.0.0.1" is not HOST:PORT`},
		{"cert", "[tls]\ncert_file = \"/nonexistent/mail.pem\"\nkey_file = \"/nonexistent/mail.key\"\n", "tls.cert_file: /nonexistent/mail.pem does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			cfg := filepath.Join(dir, "fullserver.toml")
			if err := os.WriteFile(cfg, []byte("data_dir = \""+data+"\"\n"+tc.conf), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "-config", cfg)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1; stderr:\n%s", err, stderr.String())
			}
			if got := stderr.String(); !strings.HasPrefix(got, "fullserver: ") || strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, tc.want+"\n") {
				t.Fatalf("stderr %q, want the one line %q", got, tc.want)
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the refused start created %s (%v)", data, err)
			}
		})
	}
}

// TestQACommandsFindTheServersDirectory runs admin commands as an
// administrator would, without -config: with MAILAGENT_CONFIG they act on
// the running server's directory; with no configuration to be found they
// refuse in one line and create nothing.
func TestQACommandsFindTheServersDirectory(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	dir := t.TempDir()
	s := qaStart(t, bin, qaConfig(t, dir, ""))
	elsewhere := t.TempDir()
	cmd := func(env string, args ...string) (string, string, error) {
		c := exec.Command(bin, args...)
		c.Dir = elsewhere
		c.Env = append(os.Environ(), "MAILAGENT_CONFIG="+env)
		c.Stdin = strings.NewReader("pw-of-found-1\n")
		var stdout, stderr strings.Builder
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		return stdout.String(), stderr.String(), err
	}
	if _, errs, err := cmd(s.cfg, "domain", "add", "found.test"); err != nil {
		t.Fatalf("domain add with MAILAGENT_CONFIG: %v %s", err, errs)
	}
	if _, errs, err := cmd(s.cfg, "user", "add", "fay@found.test"); err != nil {
		t.Fatalf("user add with MAILAGENT_CONFIG: %v %s", err, errs)
	}
	c := qaDial(t, s.addrs["imaps"], true)
	c.line()
	if _, done := c.imap(`LOGIN "fay@found.test" "pw-of-found-1"`); !strings.HasPrefix(done, "OK") {
		t.Fatalf("the user added through MAILAGENT_CONFIG cannot log in: %s", done)
	}
	out, errs, err := cmd("", "user", "list")
	if err == nil || out != "" || strings.Count(errs, "\n") != 1 ||
		!strings.Contains(errs, "no configuration file found") || !strings.Contains(errs, "no directory exists at data/mailagent.db") {
		t.Fatalf("user list with no configuration: %v, stdout %q, stderr %q", err, out, errs)
	}
	if es, _ := os.ReadDir(elsewhere); len(es) != 0 {
		t.Fatalf("a refused command created %v", es)
	}
	// A -data naming no directory (a typo) is refused, not created.
	missing := filepath.Join(elsewhere, "mistyped")
	for _, args := range [][]string{{"user", "list"}, {"queue", "list"}, {"domain", "add", "typo.test"}} {
		out, errs, err = cmd("", append([]string{"-data", missing}, args...)...)
		if err == nil || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "no directory exists at "+missing) {
			t.Errorf("%v with -data %s: %v, stdout %q, stderr %q", args, missing, err, out, errs)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("-data %s was created (stat: %v)", missing, err)
	}
}

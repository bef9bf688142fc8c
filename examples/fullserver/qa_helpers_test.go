package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// qaBinary builds the server, as an administrator following the README
// would with go build, once for all the tests of the process: linking
// it takes seconds, and every test runs the same binary.
func qaBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	qaBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "fullserver-qa-")
		if err != nil {
			qaBuild.err = err
			return
		}
		qaBuild.dir = dir
		qaBuild.bin = filepath.Join(dir, "fullserver")
		if out, err := exec.Command("go", "build", "-o", qaBuild.bin, ".").CombinedOutput(); err != nil {
			qaBuild.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if qaBuild.err != nil {
		t.Fatal(qaBuild.err)
	}
	return qaBuild.bin
}

// qaBuild is qaBinary's one build; TestMain removes its directory.
var qaBuild struct {
	once     sync.Once
	dir, bin string
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if qaBuild.dir != "" {
		os.RemoveAll(qaBuild.dir)
	}
	os.Exit(code)
}

// qaServer is one running fullserver process started from a
// configuration file on loopback ports chosen by the kernel.
type qaServer struct {
	bin, cfg, data string
	addrs          map[string]string // listener name → address, from the banner
	password       string            // the first run's generated password, if printed
	logs           *strings.Builder
	exited         chan error
	proc           *os.Process
}

// qaConfig writes a configuration with every listener on 127.0.0.1:0 and
// a resolver nobody answers on, so nothing leaves the machine; extra is
// appended verbatim.
func qaConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	cfg := filepath.Join(dir, "fullserver.toml")
	text := fmt.Sprintf(`hostname = "mail.qa.test"
data_dir = %q
%s
[listen]
mx = "127.0.0.1:0"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:0"
pop3 = "127.0.0.1:0"
pop3s = "127.0.0.1:0"
lmtp = "127.0.0.1:0"
metrics = "127.0.0.1:0"
[dns]
resolver = "127.0.0.1:9"
`, filepath.Join(dir, "data"), extra)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// qaStart runs bin with cfg and reads its banner up to the client
// settings line.
func qaStart(t *testing.T, bin, cfg string) *qaServer {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfg)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &qaServer{bin: bin, cfg: cfg, addrs: map[string]string{}, logs: &strings.Builder{}, exited: make(chan error, 1)}
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.proc = cmd.Process
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		s.proc.Kill()
		s.exited <- <-s.exited
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	listener := regexp.MustCompile(`^\s+(\w+)\s+(127\.0\.0\.1:\d+|/\S+)$`)
	password := regexp.MustCompile(`^\s+password: (\S+)`)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := listener.FindStringSubmatch(sc.Text()); m != nil {
			s.addrs[m[1]] = m[2]
		}
		if m := password.FindStringSubmatch(sc.Text()); m != nil {
			s.password = m[1]
		}
		if strings.HasPrefix(sc.Text(), "Read it:") {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	for _, l := range []string{"mx", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "lmtp", "metrics"} {
		if s.addrs[l] == "" {
			t.Fatalf("banner does not show listener %s (got %v)", l, s.addrs)
		}
	}
	return s
}

// stop sends SIGTERM and returns the exit error (nil for status 0).
func (s *qaServer) stop(t *testing.T) error {
	t.Helper()
	if err := s.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		s.exited <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("server did not exit within 30 s of SIGTERM")
		return nil
	}
}

// admin runs an administration command against the server's
// configuration and fails the test if it exits non-zero.
func (s *qaServer) admin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, append([]string{"-config", s.cfg}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fullserver %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var qaTLS = &tls.Config{InsecureSkipVerify: true} // the self-signed certificate

// qaSubmit sends one message through the implicit-TLS submission port
// with AUTH PLAIN.
func qaSubmit(t *testing.T, addr, user, pass, from, to, msg string) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, qaTLS)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(smtp.PlainAuth("", user, pass, "127.0.0.1")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail(from); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, strings.ReplaceAll(msg, "\n", "\r\n"))
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	c.Quit()
}

// qaText is a line-oriented client for IMAP and POP3 conversations.
type qaText struct {
	t    *testing.T
	conn net.Conn
	r    *textproto.Reader
	tag  int
}

func qaDial(t *testing.T, addr string, implicitTLS bool) *qaText {
	t.Helper()
	var conn net.Conn
	var err error
	if implicitTLS {
		conn, err = tls.Dial("tcp", addr, qaTLS)
	} else {
		conn, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return &qaText{t: t, conn: conn, r: textproto.NewReader(bufio.NewReader(conn))}
}

func (c *qaText) line() string {
	c.t.Helper()
	l, err := c.r.ReadLine()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return l
}

func (c *qaText) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s+"\r\n"); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// starttls upgrades the connection after the server said yes.
func (c *qaText) starttls() {
	tc := tls.Client(c.conn, qaTLS)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = textproto.NewReader(bufio.NewReader(tc))
}

// imap sends a tagged command and returns the untagged lines and the
// tagged completion line.
func (c *qaText) imap(cmd string) (untagged []string, done string) {
	c.t.Helper()
	c.tag++
	tag := fmt.Sprintf("q%d", c.tag)
	c.send(tag + " " + cmd)
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

// pop sends a POP3 command and returns its status line.
func (c *qaText) pop(cmd string) string {
	c.t.Helper()
	c.send(cmd)
	return c.line()
}

// qaSMTP is a raw SMTP conversation, for replies net/smtp hides.
func qaSMTP(t *testing.T, addr string) *qaText {
	c := qaDial(t, addr, false)
	if l := c.reply(); !strings.HasPrefix(l, "220") {
		t.Fatalf("greeting: %q", l)
	}
	return c
}

// reply reads one SMTP reply and returns its last line.
func (c *qaText) reply() string {
	c.t.Helper()
	for {
		l := c.line()
		if len(l) < 4 || l[3] != '-' {
			return l
		}
	}
}

func (c *qaText) smtp(cmd string) string {
	c.t.Helper()
	c.send(cmd)
	return c.reply()
}

// dialog sends each step's command (none for an empty one: the greeting)
// and fails the test unless the reply starts with the step's code.
func (c *qaText) dialog(steps ...[2]string) {
	c.t.Helper()
	for _, step := range steps {
		if step[0] != "" {
			c.send(step[0])
		}
		if got := c.reply(); !strings.HasPrefix(got, step[1]) {
			c.t.Fatalf("%q: %q, want %s", step[0], got, step[1])
		}
	}
}

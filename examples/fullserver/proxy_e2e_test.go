package main

import (
	"bufio"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/internal/interop"
)

// TestProxyEndToEnd runs two backend nodes (127.0.0.1, 127.0.0.2) and a
// proxy (127.0.0.3) on one SQL directory and one Maildir tree, as built
// binaries: mail arrives through either node's MX, IMAP and POP3 through
// the proxy reach each user's backend, flags set through one node show
// on the other, a move ends the user's sessions and sends the next login
// to the new backend, and a backend killed with SIGKILL loses no
// acknowledged message and fails only its own users.
func TestProxyEndToEnd(t *testing.T) {
	bin := qaBinary(t)
	t.Run("mariadb", func(t *testing.T) {
		t.Parallel()
		runProxyE2E(t, bin, "mysql", tempMySQL(t, "proxy"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		_, dsn := interop.TempPostgres(t, interop.PostgresDSN(t), "proxy")
		runProxyE2E(t, bin, "postgres", dsn)
	})
}

// clusterPorts picks, for each listener, one port free on all three
// addresses: the proxy reaches every backend on the same ports. They are
// drawn below the kernel's ephemeral range (32768 and up), so that no
// other test's outgoing connection or ":0" listener takes one between
// this check and the nodes' start.
func clusterPorts(t *testing.T, names ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	used := map[int]bool{}
	for _, n := range names {
		for try := 0; ; try++ {
			if try > 100 {
				t.Fatal("no port free on 127.0.0.1-3")
			}
			port := 20000 + mathrand.IntN(12000)
			if used[port] {
				continue
			}
			ok := true
			var held []net.Listener
			for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
				l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
				if err != nil {
					ok = false
					break
				}
				held = append(held, l)
			}
			for _, l := range held {
				l.Close()
			}
			if ok {
				out[n], used[port] = port, true
				break
			}
		}
	}
	return out
}

// node is one fullserver process of the cluster.
type node struct {
	name, cfg string
	bin       string
	logs      *syncBuf
	proc      *os.Process
	exited    chan error
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run runs an administration command with this node's configuration.
func (n *node) run(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(n.bin, append([]string{"-config", n.cfg}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: fullserver %s: %v\n%s", n.name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// start runs the server and waits for its banner; it may run on a
// goroutine of its own, so it returns its failure.
func (n *node) start(t *testing.T) error {
	cmd := exec.Command(n.bin, "-config", n.cfg)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	n.logs, n.exited = &syncBuf{}, make(chan error, 1)
	cmd.Stderr = n.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	n.proc = cmd.Process
	go func() { n.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		n.proc.Kill()
		<-n.exited
		if t.Failed() {
			t.Logf("%s log:\n%s", n.name, n.logs.String())
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Read it:") {
			go io.Copy(io.Discard, stdout)
			return nil
		}
	}
	// Its standard error is complete once it has exited.
	select {
	case err := <-n.exited:
		n.exited <- err
		return fmt.Errorf("%s did not start (%v):\n%s", n.name, err, n.logs.String())
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s closed its standard output without exiting:\n%s", n.name, n.logs.String())
	}
}

func runProxyE2E(t *testing.T, bin, driver, dsn string) {
	root := t.TempDir()
	certFile, keyFile, err := auth.SelfSigned(filepath.Join(root, "tls"), "mail.cluster.test")
	if err != nil {
		t.Fatal(err)
	}
	ports := clusterPorts(t, "mx", "submission", "imap", "pop3", "lmtp")
	common := fmt.Sprintf(`hostname = "mail.cluster.test"
[store]
driver = %q
dsn = %q
[maildir]
base = %q
[tls]
cert_file = %q
key_file = %q
[dns]
resolver = "127.0.0.1:9"
timeout = "50ms"
`, driver, dsn, filepath.Join(root, "mail"), certFile, keyFile)
	mk := func(name, ip, listen, extra string) *node {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "fullserver.toml")
		text := fmt.Sprintf("data_dir = %q\n%s[listen]\nimaps = \"\"\npop3s = \"\"\nsubmissions = \"\"\nmetrics = \"\"\n%s\n%s",
			filepath.Join(dir, "data"), common, listen, extra)
		for _, l := range []string{"mx", "submission", "imap", "pop3", "lmtp"} {
			if strings.Contains(listen, l+" = ") {
				continue
			}
			text = strings.Replace(text, "[listen]\n", fmt.Sprintf("[listen]\n%s = \"%s:%d\"\n", l, ip, ports[l]), 1)
		}
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return &node{name: name, cfg: cfg, bin: bin}
	}
	trusted := `trusted_proxies = ["127.0.0.3"]`
	n1 := mk("node1", "127.0.0.1", trusted, "")
	n2 := mk("node2", "127.0.0.2", trusted, "")
	px := mk("proxy", "127.0.0.3", `mx = ""`, fmt.Sprintf(`[proxy]
enabled = true
backends = ["127.0.0.1", "127.0.0.2"]
imap_port = %d
pop3_port = %d
submission_port = %d
lmtp_port = %d
ca_file = %q
server_name = "mail.cluster.test"
source_address = "127.0.0.3"
`, ports["imap"], ports["pop3"], ports["submission"], ports["lmtp"], certFile))

	const pw = "cluster secret 1"
	n1.run(t, "", "migrate")
	n1.run(t, "", "domain", "add", "cluster.test")
	for user, host := range map[string]string{"alice": "127.0.0.1", "bob": "127.0.0.2", "carol": "127.0.0.1"} {
		n1.run(t, pw+"\n", "user", "add", user+"@cluster.test")
		n1.run(t, "", "user", "move", user+"@cluster.test", host)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, n := range []*node{n1, n2, px} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = n.start(t) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	at := func(ip, l string) string { return fmt.Sprintf("%s:%d", ip, ports[l]) }
	// Mail for each user through the other node's MX: with shared
	// storage the receiving node writes it into the owner's Maildir.
	mx := func(ip, to, subject string) {
		c := qaSMTP(t, at(ip, "mx"))
		c.dialog([2]string{"EHLO client.example", "250"}, [2]string{"MAIL FROM:<x@example.net>", "250"},
			[2]string{"RCPT TO:<" + to + ">", "250"}, [2]string{"DATA", "354"})
		c.send("From: x@example.net\r\nTo: " + to + "\r\nSubject: " + subject + "\r\n\r\nhello\r\n.")
		if got := c.reply(); !strings.HasPrefix(got, "250") {
			t.Fatalf("DATA to %s through %s: %q", to, ip, got)
		}
		c.smtp("QUIT")
	}
	mx("127.0.0.2", "alice@cluster.test", "for alice via node2")
	mx("127.0.0.1", "bob@cluster.test", "for bob via node1")

	// IMAP through the proxy, from a client address of its own.
	proxyIMAP := func(user string) (*qaText, string) {
		c := dialFrom(t, "127.0.0.9", at("127.0.0.3", "imap"))
		c.line()
		if _, done := c.imap("STARTTLS"); !strings.HasPrefix(done, "OK") {
			t.Fatalf("STARTTLS: %q", done)
		}
		c.starttls()
		_, done := c.imap("LOGIN " + user + "@cluster.test \"" + pw + "\"")
		return c, done
	}
	a, done := proxyIMAP("alice")
	if !strings.HasPrefix(done, "OK") {
		t.Fatalf("alice's login through the proxy: %q", done)
	}
	if un, _ := a.imap("SELECT INBOX"); !contains(un, "* 1 EXISTS") {
		t.Fatalf("alice's INBOX: %q", un)
	}
	if !strings.Contains(n1.logs.String(), "user=alice@cluster.test") || strings.Contains(n2.logs.String(), "user=alice@cluster.test") {
		t.Fatal("alice's session did not go to node1 alone")
	}
	if l := n1.logs.String(); !strings.Contains(l, "remote=127.0.0.9:") {
		t.Fatalf("node1 did not see the client's address:\n%s", l)
	}
	p := dialFrom(t, "127.0.0.9", at("127.0.0.3", "pop3"))
	p.line()
	p.pop("STLS")
	p.starttls()
	p.pop("USER bob@cluster.test")
	if got := p.pop("PASS " + pw); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("bob's POP3 login through the proxy: %q", got)
	}
	if got := p.pop("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Fatalf("bob's STAT: %q", got)
	}
	p.pop("QUIT")
	if !strings.Contains(n2.logs.String(), "user=bob@cluster.test") {
		t.Fatal("bob's POP3 session did not reach node2")
	}

	// A flag set through node1 (by the proxy) is seen on node2 directly.
	if _, done := a.imap("STORE 1 +FLAGS (\\Flagged)"); !strings.HasPrefix(done, "OK") {
		t.Fatalf("STORE: %q", done)
	}
	d := qaDial(t, at("127.0.0.2", "imap"), false)
	d.line()
	d.imap("STARTTLS")
	d.starttls()
	if _, done := d.imap("LOGIN alice@cluster.test \"" + pw + "\""); !strings.HasPrefix(done, "OK") {
		t.Fatalf("alice on node2 directly: %q", done)
	}
	d.imap("SELECT INBOX")
	if un, _ := d.imap("FETCH 1 FLAGS"); len(un) == 0 || !strings.Contains(un[0], `\Flagged`) {
		t.Fatalf("flags on node2: %q", un)
	}
	d.imap("LOGOUT")

	// Moving alice to node2 ends her session at the proxy; her next
	// login lands on node2.
	if out := px.run(t, "", "user", "move", "alice@cluster.test", "127.0.0.2"); !strings.HasSuffix(out, "open sessions ended: 1\n") {
		t.Fatalf("user move: %q", out)
	}
	if l := a.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("moved session got %q, want BYE", l)
	}
	before := strings.Count(n2.logs.String(), "user=alice@cluster.test")
	a2, done := proxyIMAP("alice")
	if !strings.HasPrefix(done, "OK") {
		t.Fatalf("alice after the move: %q", done)
	}
	a2.imap("LOGOUT")
	if strings.Count(n2.logs.String(), "user=alice@cluster.test") == before {
		t.Fatal("alice's login after the move did not reach node2")
	}

	// node2 acknowledges a message for bob, then dies.
	mx("127.0.0.2", "bob@cluster.test", "acknowledged before the kill")
	if err := n2.proc.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n2.exited
	n2.exited <- nil
	for _, user := range []string{"alice", "bob"} {
		if _, done := proxyIMAP(user); !strings.HasPrefix(done, "NO [UNAVAILABLE]") {
			t.Fatalf("%s, homed on the dead node: %q, want NO [UNAVAILABLE]", user, done)
		}
	}
	if _, done := proxyIMAP("carol"); !strings.HasPrefix(done, "OK") {
		t.Fatalf("carol, homed on the live node: %q", done)
	}
	l := qaSMTP(t, at("127.0.0.3", "lmtp"))
	l.dialog([2]string{"LHLO client.example", "250"}, [2]string{"MAIL FROM:<x@example.net>", "250"},
		[2]string{"RCPT TO:<carol@cluster.test>", "250"}, [2]string{"RCPT TO:<bob@cluster.test>", "451 4.4.1"})

	// bob moves to node1, which finds both his messages in the shared
	// store.
	px.run(t, "", "user", "move", "bob@cluster.test", "127.0.0.1")
	b, done := proxyIMAP("bob")
	if !strings.HasPrefix(done, "OK") {
		t.Fatalf("bob after moving off the dead node: %q", done)
	}
	if un, _ := b.imap("SELECT INBOX"); !contains(un, "* 2 EXISTS") {
		t.Fatalf("bob's INBOX on node1 after node2's death: %q", un)
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// dialFrom connects to addr from the local address src.
func dialFrom(t *testing.T, src, addr string) *qaText {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return &qaText{t: t, conn: conn, r: textproto.NewReader(bufio.NewReader(conn))}
}

package smtp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/imap"
	"github.com/mailagent/mailagent/internal/interop"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
)

// startDaemon runs an outside daemon in the foreground in its own
// process group, stopped when the test ends, and waits for addrs.
func startDaemon(t *testing.T, what string, limit time.Duration, cmd *exec.Cmd, logFile string, addrs ...string) {
	t.Helper()
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("%s log:\n%s", what, b)
		}
	})
	interop.WaitListeningFor(t, what, limit, exited, addrs...)
}

// rspamd is a private rspamd: Debian's rules with a local.d on loopback
// ports, its proxy worker in milter mode scanning itself.
type rspamd struct {
	milter, controller string
}

func startRspamd(t *testing.T, extra ...string) rspamd {
	t.Helper()
	bin := interop.Program(t, "rspamd")
	if _, err := os.Stat("/etc/rspamd/rspamd.conf"); err != nil {
		interop.Require(t, "rspamd's configuration /etc/rspamd/rspamd.conf: %v", err)
	}
	dir := t.TempDir()
	r := rspamd{milter: interop.FreePort(t), controller: interop.FreePort(t)}
	files := map[string]string{
		// Milter mode; the proxy scans with its own rules (no normal
		// worker to forward to).
		"local.d/worker-proxy.inc":      fmt.Sprintf("bind_socket = %q;\nmilter = yes;\ntimeout = 120s;\nupstream \"local\" { default = yes; self_scan = yes; }\n", r.milter),
		"local.d/worker-normal.inc":     "enabled = false;\n",
		"local.d/worker-fuzzy.inc":      "enabled = false;\n",
		"local.d/worker-controller.inc": fmt.Sprintf("bind_socket = %q;\npassword = \"q1\";\nenable_password = \"q1\";\n", r.controller),
		// The GTUBE variants for each action (YJS* is "add header"),
		// and DNS that gives up fast on a machine without it.
		// The public suffix list rspamd matches URLs with takes it over a
		// minute to compile at every start; the tests' domains need only
		// these suffixes.
		"local.d/options.inc": fmt.Sprintf("enable_test_patterns = true;\ndns { timeout = 0.3s; retransmits = 1; }\nurl_tld = %q;\n",
			filepath.Join(dir, "tld.dat")),
		"tld.dat":             "example\ntest\ncom\norg\nnet\n",
		"local.d/logging.inc": "type = \"console\";\nlevel = \"notice\";\n",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		files[extra[i]] = extra[i+1]
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"db", "run", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-f", "-c", "/etc/rspamd/rspamd.conf",
		"--var=LOCAL_CONFDIR=" + dir, "--var=DBDIR=" + filepath.Join(dir, "db"),
		"--var=RUNDIR=" + filepath.Join(dir, "run"), "--var=LOGDIR=" + filepath.Join(dir, "log")}
	if os.Geteuid() == 0 {
		// rspamd refuses to run as root without a user to become.
		args = append(args, "-u", "root", "-g", "root")
	}
	startDaemon(t, "rspamd", 3*time.Minute, exec.Command(bin, args...), filepath.Join(dir, "rspamd.out"), r.milter, r.controller)
	return r
}

// gtube builds the test pattern of an rspamd action: X is reject, Y add
// header, Z rewrite subject.
func gtube(first string) string {
	return first + "JS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
}

// TestInteropRspamd: rspamd's proxy worker as a milter refuses GTUBE
// with its own reply, and its "add header" action files the message in
// Junk with rspamd's X-Spam fields.
func TestInteropRspamd(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	pub := dkimKey(t, keys)
	// rspamd signs mail from a local address (127.0.0.1 here) for the
	// From domain, with the key of selector s1.
	r := startRspamd(t, "local.d/dkim_signing.conf", fmt.Sprintf(
		"path = %q;\nselector = \"s1\";\nsign_local = true;\nallow_username_mismatch = true;\nallow_hdrfrom_mismatch = true;\nuse_esld = false;\n",
		filepath.Join(keys, "s1.private")))
	st := newTestStack(t)
	o := st.options(MX)
	o.Checks.Filters = []mail.Filter{&Milter{Address: "inet:" + r.milter}}
	addr, _ := st.serve(o)
	msg := func(subject, body string) string {
		return fmt.Sprintf("%q", "From: sender@far.example\r\nTo: alice@local.example\r\nSubject: "+subject+
			"\r\nMessage-ID: <"+subject+"@far.example>\r\nDate: Mon, 07 Dec 2026 00:00:00 +0000\r\n\r\n"+body+"\r\n.\r\n")
	}
	c := dialFilter(t, addr)
	c.run(greet + toAlice + `
		R: ` + msg("gtube", gtube("X")) + `
		S: 554 5.7.1 Gtube pattern
		` + toAlice + `
		R: ` + msg("add header", gtube("Y")) + `
		S: 250
		` + toAlice + `
		R: ` + msg("ham", "Hello Alice, lunch at noon? Bob") + `
		S: 250
		` + toAlice + `
		R: ` + fmt.Sprintf("%q", "From: bob@local.example\r\nTo: alice@local.example\r\nSubject: signed by rspamd\r\nMessage-ID: <signed@local.example>\r\nDate: Mon, 07 Dec 2026 00:00:00 +0000\r\n\r\nHello from bob.\r\n.\r\n") + `
		S: 250`)
	junk := st.messages("alice@local.example", "Junk")
	if len(junk) != 1 || !strings.Contains(junk[0], "Subject: add header") {
		t.Fatalf("Junk holds %d messages, want the add-header one: %q", len(junk), junk)
	}
	for _, want := range []string{"\r\nX-Spam: Yes\r\n"} {
		if !strings.Contains(junk[0], want) {
			t.Errorf("add-header message lacks %q:\n%s", want, junk[0])
		}
	}
	inbox := st.messages("alice@local.example", "")
	if len(inbox) != 2 || !strings.Contains(inbox[0]+inbox[1], "Subject: ham") {
		t.Fatalf("INBOX holds %d messages, want the ham and the signed one: %q", len(inbox), inbox)
	}
	for _, m := range inbox {
		if strings.Contains(m, "X-Spam: Yes") {
			t.Errorf("ham flagged as spam:\n%s", m)
		}
		if strings.Contains(m, "Subject: signed by rspamd") {
			// rspamd's DKIM signing action, applied as a header change.
			verifyDKIM(t, pub, m)
		}
	}
}

// TestInteropSpamAssassin: spamass-milter in front of a private spamd
// refuses GTUBE (score 1000, above -r 15) and passes ham with
// SpamAssassin's fields added.
func TestInteropSpamAssassin(t *testing.T) {
	t.Parallel()
	spamd := interop.Program(t, "spamd")
	milterBin := interop.Program(t, "spamass-milter")
	dir := t.TempDir()
	spamdAddr, milterAddr := interop.FreePort(t), interop.FreePort(t)
	host, port, _ := net.SplitHostPort(spamdAddr)
	mhost, mport, _ := net.SplitHostPort(milterAddr)
	args := []string{"-x", "--listen=" + spamdAddr, "--allowed-ips=127.0.0.1", "-s", "stderr",
		"--pidfile=" + filepath.Join(dir, "spamd.pid"), "--max-children=1", "--min-children=1"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	startDaemon(t, "spamd", 3*time.Minute, exec.Command(spamd, args...), filepath.Join(dir, "spamd.out"), spamdAddr)
	startDaemon(t, "spamass-milter", time.Minute, exec.Command(milterBin, "-p", "inet:"+mport+"@"+mhost, "-r", "15",
		"--", "-d", host, "-p", port), filepath.Join(dir, "milter.out"), milterAddr)

	st := newTestStack(t)
	o := st.options(MX)
	o.Checks.Filters = []mail.Filter{&Milter{Address: "inet:" + milterAddr}}
	addr, _ := st.serve(o)
	msg := func(subject, body string) string {
		return fmt.Sprintf("%q", "From: sender@far.example\r\nTo: alice@local.example\r\nSubject: "+subject+
			"\r\nMessage-ID: <"+strings.ReplaceAll(subject, " ", ".")+"@far.example>\r\nDate: Mon, 07 Dec 2026 00:00:00 +0000\r\n\r\n"+body+"\r\n.\r\n")
	}
	dialFilter(t, addr).run(greet + toAlice + `
		R: ` + msg("gtube", "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X") + `
		S: 550 5.7.1
		` + toAlice + `
		R: ` + msg("ham", "Hello Alice, lunch at noon? Bob") + `
		S: 250`)
	inbox := st.messages("alice@local.example", "")
	if len(inbox) != 1 || !strings.Contains(inbox[0], "Subject: ham") {
		t.Fatalf("INBOX holds %d messages, want the ham: %q", len(inbox), inbox)
	}
	if !strings.Contains(inbox[0], "\r\nX-Spam-Checker-Version: SpamAssassin") || !strings.Contains(inbox[0], "\r\nX-Spam-Status: No") {
		t.Errorf("ham lacks SpamAssassin's fields:\n%s", inbox[0])
	}
}

// TestInteropOpenDKIM: OpenDKIM as a milter signs mail from its domain
// sent from an internal host, as it does behind Postfix, and the stored
// copy's signature verifies against the key opendkim-genkey published.
func TestInteropOpenDKIM(t *testing.T) {
	t.Parallel()
	opendkim := interop.Program(t, "opendkim")
	dir := t.TempDir()
	res := dkimKey(t, dir)
	maddr := interop.FreePort(t)
	mhost, mport, _ := net.SplitHostPort(maddr)
	conf := filepath.Join(dir, "opendkim.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`Socket inet:%s@%s
Mode sv
Domain local.example
Selector s1
KeyFile %s
Background no
Syslog no
RequireSafeKeys false
AuthservID opendkim.test
InternalHosts 127.0.0.1
PidFile %s
`, mport, mhost, filepath.Join(dir, "s1.private"), filepath.Join(dir, "opendkim.pid"))), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, "opendkim", time.Minute, exec.Command(opendkim, "-f", "-x", conf), filepath.Join(dir, "opendkim.out"), maddr)

	st := newTestStack(t)
	o := st.options(MX)
	o.Checks.Filters = []mail.Filter{&Milter{Address: "inet:" + maddr}}
	addr, _ := st.serve(o)
	dialFilter(t, addr).run(greet + toAlice + `
		R: ` + fmt.Sprintf("%q", "From: bob@local.example\r\nTo: alice@local.example\r\nSubject: signed by opendkim\r\nDate: Mon, 07 Dec 2026 00:00:00 +0000\r\nMessage-ID: <dkim@local.example>\r\n\r\nHello.\r\n.\r\n") + `
		S: 250`)
	inbox := st.messages("alice@local.example", "")
	if len(inbox) != 1 {
		t.Fatalf("INBOX holds %d messages", len(inbox))
	}
	if !strings.Contains(inbox[0], "DKIM-Signature: ") || !strings.Contains(inbox[0], "d=local.example") {
		t.Fatalf("no DKIM-Signature from opendkim:\n%s", inbox[0])
	}
	verifyDKIM(t, res, inbox[0])
}

// dkimKey makes the key s1 of local.example with opendkim-genkey in dir
// (dir/s1.private) and returns a resolver publishing it.
func dkimKey(t *testing.T, dir string) *dnsauth.MockResolver {
	t.Helper()
	genkey := interop.Program(t, "opendkim-genkey")
	if out, err := exec.Command(genkey, "-D", dir, "-d", "local.example", "-s", "s1").CombinedOutput(); err != nil {
		t.Fatalf("opendkim-genkey: %v\n%s", err, out)
	}
	txt, err := os.ReadFile(filepath.Join(dir, "s1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// s1._domainkey IN TXT ( "v=DKIM1; h=sha256; k=rsa; " "p=..." ) ; comment
	var record strings.Builder
	for i, part := range strings.Split(string(txt), `"`) {
		if i%2 == 1 {
			record.WriteString(part)
		}
	}
	return &dnsauth.MockResolver{TXT: map[string][]string{"s1._domainkey.local.example": {record.String()}}}
}

// verifyDKIM checks that msg carries one valid signature of local.example.
func verifyDKIM(t *testing.T, res *dnsauth.MockResolver, msg string) {
	t.Helper()
	results, err := dnsauth.VerifyDKIM(context.Background(), res, strings.NewReader(msg))
	if err != nil || len(results) != 1 || results[0].Status != dnsauth.DKIMPass || results[0].Domain != "local.example" {
		t.Errorf("verifying the DKIM signature: %+v, %v\n%s", results, err, msg)
	}
}

// TestInteropOpenDMARC: OpenDMARC as a milter reads our SPF result from
// our Authentication-Results field (this host is a trusted authserv-id)
// and adds its own DMARC result for the From domain, as behind Postfix.
// The machine has no DNS, so the policy is not found: dmarc=none.
func TestInteropOpenDMARC(t *testing.T) {
	t.Parallel()
	opendmarc := interop.Program(t, "opendmarc")
	dir := t.TempDir()
	maddr := interop.FreePort(t)
	mhost, mport, _ := net.SplitHostPort(maddr)
	ignore := filepath.Join(dir, "ignore")
	if err := os.WriteFile(ignore, []byte("192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "opendmarc.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`Socket inet:%s@%s
AuthservID opendmarc.test
TrustedAuthservIDs mx.test
IgnoreHosts %s
Background false
Syslog false
PidFile %s
SPFIgnoreResults false
SPFSelfValidate false
RejectFailures true
`, mport, mhost, ignore, filepath.Join(dir, "opendmarc.pid"))), 0o644); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, "opendmarc", time.Minute, exec.Command(opendmarc, "-f", "-c", conf), filepath.Join(dir, "opendmarc.out"), maddr)

	st := newTestStack(t)
	o := st.options(MX)
	o.Checks = mail.Checks{Connect: []mail.ConnectChecker{policy{}}, Mail: []mail.MailChecker{policy{}},
		Filters: []mail.Filter{&Milter{Address: "inet:" + maddr}}}
	addr, _ := st.serve(o)
	dialFilter(t, addr).run(greet + toAlice + `
		R: ` + fmt.Sprintf("%q", "From: sender@far.example\r\nTo: alice@local.example\r\nSubject: dmarc\r\nDate: Mon, 07 Dec 2026 00:00:00 +0000\r\nMessage-ID: <dmarc@far.example>\r\n\r\nHello.\r\n.\r\n") + `
		S: 250`)
	inbox := st.messages("alice@local.example", "")
	if len(inbox) != 1 {
		t.Fatalf("INBOX holds %d messages", len(inbox))
	}
	if !strings.Contains(inbox[0], "Authentication-Results: opendmarc.test; dmarc=") || !strings.Contains(inbox[0], "header.from=far.example") {
		t.Errorf("no DMARC result from opendmarc:\n%s", inbox[0])
	}
}

// recordLearner passes jobs to a Learner and reports each result.
type recordLearner struct {
	l    local.Learner
	errs chan error
}

func (r recordLearner) Learn(ctx context.Context, user string, spam bool, msg io.Reader) error {
	err := r.l.Learn(ctx, user, spam, msg)
	r.errs <- err
	return err
}

// TestInteropRspamdLearn: a message alice moves into Junk over IMAP is
// learnt as spam by rspamd's controller (Bayes in a private Redis), in
// the background, and one moved back out as ham; rspamd's statistics
// count both.
func TestInteropRspamdLearn(t *testing.T) {
	t.Parallel()
	redis := interop.Program(t, "redis-server")
	dir := t.TempDir()
	raddr := interop.FreePort(t)
	rhost, rport, _ := net.SplitHostPort(raddr)
	startDaemon(t, "redis-server", time.Minute, exec.Command(redis, "--bind", rhost, "--port", rport, "--save", "",
		"--appendonly", "no", "--dir", dir), filepath.Join(dir, "redis.out"), raddr)
	r := startRspamd(t, "local.d/redis.conf", fmt.Sprintf("servers = %q;\n", raddr),
		"local.d/classifier-bayes.conf", "backend = \"redis\";\nmin_learns = 1;\nautolearn = false;\n")

	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	body := strings.Repeat("Cheap watches and pills, limited offer, click the link below to claim your prize today. ", 20)
	dialFilter(t, addr).run(greet + toAlice + `
		R: ` + fmt.Sprintf("%q", "From: sender@far.example\r\nTo: alice@local.example\r\nSubject: learn me\r\nMessage-ID: <learn@far.example>\r\nDate: Mon, 07 Dec 2026 00:00:00 +0000\r\n\r\n"+body+"\r\n.\r\n") + `
		S: 250`)

	results := make(chan error, 10)
	q := local.NewLearnQueue(recordLearner{&local.RspamdLearner{URL: "http://" + r.controller, Password: "q1"}, results},
		local.LearnQueueOptions{Attempts: 1})
	defer q.Close()
	moved := func(user, from, to string, msgs []*os.File) {
		spam, learn := local.LearnFromMove(from, to, "Junk", "Trash")
		for _, f := range msgs {
			if !learn {
				f.Close()
				continue
			}
			q.Submit(local.LearnJob{User: user, Spam: spam, Open: func() (io.ReadCloser, error) {
				_, err := f.Seek(0, io.SeekStart)
				return io.NopCloser(f), err
			}, Done: func() { f.Close() }})
		}
	}
	isrv, err := imap.NewServer(imap.Options{Store: st.maildirs, Authenticator: st.auth, AllowInsecureAuth: true, Moved: moved})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go isrv.Serve(l)
	defer isrv.Close()
	c, err := imapclient.DialInsecure(l.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@local.example", testPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, step := range [][2]string{{"INBOX", "Junk"}, {"Junk", "Archive"}} {
		if _, err := c.Select(step[0], nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Move(goimap.SeqSetNum(1), step[1]).Wait(); err != nil {
			t.Fatalf("MOVE %s → %s: %v", step[0], step[1], err)
		}
		if err := <-results; err != nil {
			t.Fatalf("learning from %s → %s: %v", step[0], step[1], err)
		}
	}
	resp, err := http.Get("http://" + r.controller + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stat struct {
		Learned   int `json:"learned"`
		Statfiles []struct {
			Symbol   string `json:"symbol"`
			Revision int    `json:"revision"`
		} `json:"statfiles"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&stat); err != nil {
		t.Fatal(err)
	}
	if stat.Learned < 2 {
		t.Errorf("rspamd /stat learned = %d, want 2 (spam, then ham): %+v", stat.Learned, stat)
	}
}

// dialFilter dials the server for a dialog through a real filter: spamd
// or rspamd scanning on a loaded machine under -race can take many
// seconds per message, longer than dial's bound for a whole dialog.
func dialFilter(t *testing.T, addr string) *client {
	c := dial(t, "tcp", addr)
	_ = c.conn.SetDeadline(time.Now().Add(3 * time.Minute))
	return c
}

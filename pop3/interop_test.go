package pop3

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/internal/interop"
	"github.com/mailagent/mailagent/internal/interop/dovecottest"
	"github.com/mailagent/mailagent/store"
)

// poplibScript logs in with Python's poplib through STLS and AUTH PLAIN
// (poplib has no AUTH of its own: the command goes through _shortcmd),
// retrieves and deletes message 1 and prints what it saw as JSON.
const poplibScript = `
import base64, json, poplib, ssl, sys
host, port, cafile, user, pw = sys.argv[1:6]
p = poplib.POP3(host, int(port), timeout=20)
out = {"welcome": p.getwelcome().decode()}
out["capa_before"] = sorted(p.capa().keys())
ctx = ssl.create_default_context(cafile=cafile)
p.stls(context=ctx, )
out["capa_after"] = sorted(p.capa().keys())
ir = base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()).decode()
out["auth"] = p._shortcmd("AUTH PLAIN " + ir).decode()
out["stat"] = list(p.stat())
out["uidl"] = [l.decode() for l in p.uidl()[1]]
resp, lines, octets = p.retr(1)
out["retr"] = [l.decode() for l in lines]
out["octets"] = octets
out["dele"] = p.dele(1).decode()
out["quit"] = p.quit().decode()
print(json.dumps(out))
`

// TestPythonPoplib: Python's poplib through STLS and SASL PLAIN.
func TestPythonPoplib(t *testing.T) {
	t.Parallel()
	py := interop.Program(t, "python3")
	e := newEnv(t, func(o *Options, _ *auth.Authenticator) { o.AllowInsecureAuth = false })
	u := e.addUser("u@example.org", "pw")
	m := "From: a@example.net\nSubject: poplib\n\n.leading dot\nbody\n"
	e.deliverSeq(u, m, sizedMessage("two", 300))
	before := e.snapshot(u)
	_, port, _ := net.SplitHostPort(e.addr)
	// "localhost", the certificate's name: poplib checks the name it
	// connected to (it tries ::1 first, refused, then 127.0.0.1).
	cmd := exec.Command(py, "-c", poplibScript, "localhost", port, filepath.Join(filepath.Dir(e.base), "tls", "localhost.crt"), "u@example.org", "pw")
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, raw)
	}
	var got struct {
		Welcome          string
		CB               []string `json:"capa_before"`
		CA               []string `json:"capa_after"`
		Auth, Dele, Quit string
		Stat             []int
		UIDL, Retr       []string
		Octets           int
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if slices.Contains(got.CB, "USER") || !slices.Contains(got.CB, "STLS") {
		t.Errorf("CAPA before STLS: %q", got.CB)
	}
	if !slices.Contains(got.CA, "SASL") || slices.Contains(got.CA, "STLS") {
		t.Errorf("CAPA after STLS: %q", got.CA)
	}
	if !strings.HasPrefix(got.Auth, "+OK Logged in") {
		t.Errorf("AUTH PLAIN: %q", got.Auth)
	}
	if !slices.Equal(got.Stat, []int{2, len(crlf(m)) + 300}) {
		t.Errorf("STAT: %v", got.Stat)
	}
	wantUIDL := []string{
		fmt.Sprintf("1 %08x%08x", before.Messages[0].UID, before.UIDValidity),
		fmt.Sprintf("2 %08x%08x", before.Messages[1].UID, before.UIDValidity),
	}
	if !slices.Equal(got.UIDL, wantUIDL) {
		t.Errorf("UIDL: %q, want %q", got.UIDL, wantUIDL)
	}
	// poplib undoes the dot-stuffing; octets counts what it received.
	if want := strings.Split(strings.TrimSuffix(m, "\n"), "\n"); !slices.Equal(got.Retr, want) {
		t.Errorf("RETR: %q, want %q", got.Retr, want)
	}
	if !strings.HasPrefix(got.Quit, "+OK") || !strings.HasPrefix(got.Dele, "+OK") {
		t.Errorf("DELE %q, QUIT %q", got.Dele, got.Quit)
	}
	if snap := e.snapshot(u); len(snap.Messages) != 1 {
		t.Errorf("%d messages left, want 1", len(snap.Messages))
	}
}

// TestFetchmail: fetchmail retrieves every message through STLS and
// deletes it; a second run finds nothing.
func TestFetchmail(t *testing.T) {
	fm := interop.Program(t, "fetchmail")
	e := newEnv(t, func(o *Options, _ *auth.Authenticator) { o.AllowInsecureAuth = false })
	u := e.addUser("u@example.org", "pw")
	subjects := []string{"first", "second", "third"}
	for _, s := range subjects {
		e.deliver(u, "From: a@example.net\nTo: u@example.org\nSubject: "+s+"\n\n.dot line\nbody of "+s+"\n")
	}
	home := t.TempDir()
	host, port, _ := net.SplitHostPort(e.addr)
	bsmtp := filepath.Join(home, "out.bsmtp")
	rc := filepath.Join(home, "fetchmailrc")
	conf := fmt.Sprintf(`set no bouncemail
poll %s service %s protocol POP3 auth password
  user "u@example.org" there with password "pw" is "local" here
  sslproto "tls1.2+" sslcertck sslcertfile "%s" sslcommonname "localhost"
  bsmtp "%s"
`, host, port, filepath.Join(filepath.Dir(e.base), "tls", "localhost.crt"), bsmtp)
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() (string, int) {
		cmd := exec.Command(fm, "-f", rc, "--nodetach", "--nosyslog", "-v", "--idfile", filepath.Join(home, "ids"))
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	out, code := run()
	if code != 0 {
		t.Fatalf("fetchmail exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, "STLS") {
		t.Errorf("fetchmail did not use STLS:\n%s", out)
	}
	got, err := os.ReadFile(bsmtp)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subjects {
		if strings.Count(string(got), "Subject: "+s+"\r\n") != 1 {
			t.Errorf("message %q not retrieved once:\n%s", s, got)
		}
	}
	// BSMTP dot-stuffs again: ".dot line" arrived as ".dot line".
	if strings.Count(string(got), "\r\n..dot line\r\n") != 3 {
		t.Errorf("dot lines mangled:\n%s", got)
	}
	if f := e.files(u); len(f) != 0 {
		t.Fatalf("fetchmail left %q", f)
	}
	out, code = run()
	if code != 1 { // PS_NOMAIL
		t.Fatalf("second run exited %d, want 1 (no mail):\n%s", code, out)
	}
	if again, _ := os.ReadFile(bsmtp); len(again) != len(got) {
		t.Errorf("second run retrieved more:\n%s", again[len(got):])
	}
}

func writeFile(t testing.TB, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// popListing logs in at addr and returns the UIDL and LIST listings and
// the bytes of RETR 1.
func popListing(t *testing.T, addr, user, pass string) (uidl, list []string, retr string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &testClient{t: t, nc: nc, r: bufio.NewReader(nc)}
	c.expectPrefix("+OK")
	c.cmd("USER "+user, "+OK")
	c.cmdPrefix("PASS "+pass, "+OK")
	c.cmdPrefix("UIDL", "+OK")
	uidl = c.multi()
	c.cmdPrefix("LIST", "+OK")
	list = c.multi()
	c.cmdPrefix("RETR 1", "+OK")
	retr = strings.Join(c.multi(), "\r\n")
	c.cmdPrefix("QUIT", "+OK")
	return uidl, list, retr
}

// TestDovecotUIDL: a Maildir first served by Dovecot's POP3 server, with
// messages delivered by mailagent and files dropped by another MDA (no
// size fields, CRLF or LF endings), is listed by this server with the
// same unique-ids, sizes and bytes.
func TestDovecotUIDL(t *testing.T) {
	t.Parallel()
	dove := dovecottest.Start(t, dovecottest.Options{
		Protocols: []string{"pop3"},
		Users:     map[string]string{"alice@example.org": "secret"},
	})
	mailBase := filepath.Join(dove.Root, "mail")
	e := newEnv(t, func(o *Options, _ *auth.Authenticator) {})
	// This server's Maildir base is Dovecot's.
	ms, err := newStore(mailBase)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	e.srv.opts.Maildirs = ms
	h, _ := testArgon2.Hash("secret")
	ctx := context.Background()
	if err := e.dir.AddUser(ctx, &store.User{Address: "alice@example.org", PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	u, _ := e.dir.LookupUser(ctx, "alice@example.org")
	for i := range 3 {
		if _, err := ms.Deliver(ctx, u.Maildir, "INBOX", strings.NewReader(sizedMessage(fmt.Sprint("m", i), 200+i*50)), nil); err != nil {
			t.Fatal(err)
		}
	}
	md := filepath.Join(mailBase, u.Maildir)
	writeFile(t, filepath.Join(md, "new", "1700000000.M1P1.other"), "Subject: crlf\r\n\r\n.dot\r\nbody\r\n")
	writeFile(t, filepath.Join(md, "cur", "1700000001.M2P1.other:2,S"), "Subject: lf\n\nbody\n")
	dove.ChownTree(t, mailBase)

	dUIDL, dList, dRetr := popListing(t, dove.POP3, "alice@example.org", "secret")
	if len(dUIDL) != 5 {
		t.Fatalf("Dovecot lists %q", dUIDL)
	}
	oUIDL, oList, oRetr := popListing(t, e.addr, "alice@example.org", "secret")
	t.Logf("Dovecot's UIDL: %q", dUIDL)
	if !slices.Equal(dUIDL, oUIDL) {
		t.Errorf("UIDL differs:\ndovecot:   %q\nmailagent: %q", dUIDL, oUIDL)
	}
	if !slices.Equal(dList, oList) {
		t.Errorf("LIST differs:\ndovecot:   %q\nmailagent: %q", dList, oList)
	}
	if dRetr != oRetr {
		t.Errorf("RETR 1 differs:\ndovecot:   %q\nmailagent: %q", dRetr, oRetr)
	}
}

// TestDovecotAuthFailed: a wrong password gets the same reply, response
// code included, from Dovecot's POP3 server and from this one.
func TestDovecotAuthFailed(t *testing.T) {
	t.Parallel()
	dove := dovecottest.Start(t, dovecottest.Options{
		Protocols: []string{"pop3"},
		Users:     map[string]string{"alice@example.org": "secret"},
	})
	e := newEnv(t)
	e.addUser("alice@example.org", "secret")
	var replies []string
	for _, addr := range []string{dove.POP3, e.addr} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c := &testClient{t: t, nc: nc, r: bufio.NewReader(nc)}
		c.expectPrefix("+OK")
		c.cmd("USER alice@example.org", "+OK")
		c.send("PASS wrong")
		replies = append(replies, c.line())
		nc.Close()
	}
	if replies[0] != replies[1] || replies[1] != replyAuthFail {
		t.Errorf("wrong password: Dovecot %q, mailagent %q", replies[0], replies[1])
	}
}

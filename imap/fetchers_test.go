package imap

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/interop"
)

// TestInteropFetchmailIMAP: fetchmail over IMAP, keeping the mail on the
// server, through a counting proxy. The first run takes INBOX's three
// unseen messages and "Ärger & Co"'s one unseen message (named in
// modified UTF-7) and marks them \Seen; a second run, after one
// delivery, takes only that message; a third finds nothing (exit 1) and
// fetches no message. Every message arrives with the server's bytes.
func TestInteropFetchmailIMAP(t *testing.T) {
	fm := interop.Program(t, "fetchmail")
	t.Parallel()
	st, addr, proxy := fixtureServer(t)
	user := "alice@local.example"
	st.deliver(user, "Ärger & Co", clientMessage(17, "unseen umlaut"))
	home := t.TempDir()
	host, port, _ := strings.Cut(proxy.Addr, ":")
	bsmtp := filepath.Join(home, "out.bsmtp")
	rc := filepath.Join(home, "fetchmailrc")
	must(t, os.WriteFile(rc, []byte(fmt.Sprintf(`set no bouncemail
poll %s service %s protocol IMAP auth password
  user "%s" there with password "%s" is "alice" here
  folder "INBOX", "&AMQ-rger &- Co"
  sslproto ''
  keep
  bsmtp "%s"
`, host, port, user, testPassword, bsmtp)), 0o600))
	run := func(what string, wantCode int) wireTraffic {
		t.Helper()
		cmd := exec.Command(fm, "-f", rc, "--nodetach", "--nosyslog", "-v", "--idfile", filepath.Join(home, "ids"))
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		w := proxy.Take()
		t.Logf("fetchmail %s: exit %d, %s\n%q", what, code, w, w.Fetches)
		if code != wantCode {
			t.Fatalf("fetchmail (%s) exited %d, want %d:\n%s", what, code, wantCode, out)
		}
		return w
	}
	got := func() string {
		b, err := os.ReadFile(bsmtp)
		must(t, err)
		return string(b)
	}
	inbox := serverState(t, addr, user)
	// fetchmail fetches each message as BODY[HEADER] and BODY[TEXT].
	first := run("first run", 0)
	if first.BodyResp != 8 {
		t.Errorf("first run fetched %d header or text parts, want the 4 unseen messages' 8: %s", first.BodyResp, first)
	}
	out := got()
	for _, m := range append(slices_(inbox["INBOX"], 2, 3, 4), inbox["Ärger & Co"]...) {
		if strings.Contains(m.Flags, `\Seen`) {
			continue
		}
		_, body, _ := strings.Cut(m.Body, "\r\n\r\n")
		if strings.Count(out, m.Body[:strings.Index(m.Body, "\r\n\r\n")]) != 1 || !strings.Contains(out, body) {
			t.Errorf("message not retrieved once with its bytes:\n%q\nin\n%s", m.Body, out)
		}
	}
	after := serverState(t, addr, user)
	for folder, msgs := range after {
		if len(msgs) != len(inbox[folder]) {
			t.Errorf("%s: %d messages after fetchmail's keep run, had %d", folder, len(msgs), len(inbox[folder]))
		}
	}
	for _, m := range append(after["INBOX"], after["Ärger & Co"]...) {
		if !strings.Contains(m.Flags, `\Seen`) {
			t.Errorf("message left unseen after it was fetched: %q", m)
		}
	}

	st.deliver(user, "INBOX", clientMessage(18, "for fetchmail"))
	second := run("second run", 0)
	if second.BodyResp != 2 {
		t.Errorf("second run fetched %d header or text parts, want the new message's 2: %s", second.BodyResp, second)
	}
	if n := strings.Count(got(), "Subject: "); n != 5 {
		t.Errorf("%d messages retrieved in all, want 5", n)
	}
	third := run("run with nothing new", 1)
	if third.Whole != 0 || third.BodyResp != 0 {
		t.Errorf("run with nothing new fetched messages: %s", third)
	}
}

// slices_ returns msgs[i] for each i.
func slices_(msgs []msgState, is ...int) []msgState {
	var out []msgState
	for _, i := range is {
		out = append(out, msgs[i])
	}
	return out
}

// TestInteropGetmailIMAP: getmail6 over IMAP into a Maildir, keeping the
// mail on the server, through a counting proxy: the first run takes
// every message of INBOX, "Ärger & Co" and "Projects.Ärger & Co"; a
// second, after one delivery, takes that message only (getmail keeps the
// UIDs it has seen); a third fetches nothing. The Maildir holds the
// server's bytes (with LF line ends) and nothing else. (getmail runs
// with the race of its local delivery taken out, testdata/getmail_run.py;
// its IMAP side is its own.)
func TestInteropGetmailIMAP(t *testing.T) {
	getmail := interop.Program(t, "getmail")
	t.Parallel()
	// getmail's own Python (its #! line), which has its modules.
	head, err := os.ReadFile(getmail)
	must(t, err)
	shebang, _, _ := strings.Cut(string(head), "\n")
	python, ok := strings.CutPrefix(strings.TrimSpace(shebang), "#!")
	if !ok || strings.Contains(python, " ") {
		t.Fatalf("getmail's first line %q names no interpreter", shebang)
	}
	st, addr, proxy := fixtureServer(t)
	account := "alice@local.example"
	dir := t.TempDir()
	local := filepath.Join(dir, "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		must(t, os.MkdirAll(filepath.Join(local, d), 0o700))
	}
	// getmail refuses to deliver as root: as root, it delivers as
	// nobody, who is given the Maildir.
	asUser := ""
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		must(t, err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{"", "cur", "new", "tmp"} {
			must(t, os.Chown(filepath.Join(local, d), uid, gid))
		}
		// and the directories above it are opened to nobody.
		must(t, os.Chmod(dir, 0o755))
		must(t, os.Chmod(filepath.Dir(dir), 0o755))
		asUser = "user = nobody\n"
	}
	host, port, _ := strings.Cut(proxy.Addr, ":")
	must(t, os.WriteFile(filepath.Join(dir, "getmailrc"), []byte(fmt.Sprintf(`[retriever]
type = SimpleIMAPRetriever
server = %s
port = %s
username = %s
password = %s
mailboxes = ("INBOX", "Ärger & Co", "Projects.Ärger & Co")

[destination]
type = Maildir
path = %s/
%s
[options]
read_all = false
delete = false
delivered_to = false
received = false
verbose = 1
`, host, port, account, testPassword, local, asUser)), 0o600))
	run := func(what string) wireTraffic {
		t.Helper()
		// Through testdata/getmail_run.py: getmail's own wait for its
		// delivery process is racy (see there).
		cmd := exec.Command(python, "testdata/getmail_run.py", getmail, "--getmaildir", dir, "--rcfile", "getmailrc")
		cmd.Env = append(os.Environ(), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		w := proxy.Take()
		if err != nil {
			t.Fatalf("getmail (%s): %v\n%s\n%s", what, err, out, strings.Join(w.Transcript, "\n"))
		}
		t.Logf("getmail %s: %s\n%q\n%s", what, w, w.Fetches, out)
		return w
	}
	check := func(what string) {
		t.Helper()
		srv := serverState(t, addr, account)
		want := mailState{"local": nil}
		for _, f := range []string{"INBOX", "Ärger & Co", "Projects.Ärger & Co"} {
			for _, m := range srv[f] {
				want.add("local", lfLines(m.Body), nil)
			}
		}
		got := maildirState(t, map[string]string{"local": local}, nil).noFlags()
		from := 0
		for _, m := range got["local"] {
			from += strings.Count(m.Body, "\nX-getmail-retrieved-from-mailbox: =?utf-8?b?w4RyZ2VyICYgQ28=?=\n")
		}
		if want := 1 + strings.Count(what, "second") + strings.Count(what, "third"); from != want {
			t.Errorf("%s: %d messages say they came from \"Ärger & Co\", want %d", what, from, want)
		}
		diffState(t, what, want, got.mapBodies(getmailForm))
	}
	first := run("first run")
	if first.Whole != 7 {
		t.Errorf("first run fetched %d messages, want 7: %s", first.Whole, first)
	}
	check("after the first run")
	st.deliver(account, "Ärger & Co", clientMessage(19, "for getmail"))
	second := run("second run")
	if second.Whole != 1 {
		t.Errorf("second run fetched %d messages, want the new one: %s", second.Whole, second)
	}
	check("after the second run")
	third := run("run with nothing new")
	if third.Whole != 0 || third.BodyResp != 0 {
		t.Errorf("run with nothing new fetched messages: %s", third)
	}
	check("after the third run")
}

// getmailForm is a message as getmail stores it, without the
// Return-Path and X-getmail-retrieved-from-mailbox fields it adds.
func getmailForm(b string) string {
	b = strings.TrimPrefix(b, "Return-Path: <unknown>\n")
	return getmailFrom.ReplaceAllString(b, "")
}

var getmailFrom = regexp.MustCompile(`(?m)^X-getmail-retrieved-from-mailbox: [^\n]*\n`)

// noFlags returns the state with every message's flags left out.
func (s mailState) noFlags() mailState {
	out := mailState{}
	for folder, msgs := range s {
		out[folder] = nil
		for _, m := range msgs {
			out.add(folder, m.Body, nil)
		}
	}
	return out
}

package imap

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop"
)

// interopServer serves over STARTTLS with passwords refused before TLS,
// as a public port is configured.
func interopServer(t *testing.T) (*testStack, string) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage, `\Seen`)
	st.deliver("alice@local.example", "INBOX", multipartMessage)
	st.deliver("alice@local.example", "INBOX", strings.Replace(testMessage, "Hello there", "Third", 1), "$Label1")
	opts := st.options()
	opts.AllowInsecureAuth = false
	_, addr := st.serve(opts)
	return st, addr
}

func TestInteropPythonImaplib(t *testing.T) {
	t.Parallel()
	python := interop.Program(t, "python3")
	st, addr := interopServer(t)
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(python, "testdata/imaplib_flow.py", host, port, "alice@local.example", testPassword, st.certFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == "IDLING" {
			st.deliver("alice@local.example", "INBOX", testMessage)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("imaplib flow: %v\nstdout %q\nstderr %s", err, lines, stderr.String())
	}
	if len(lines) == 0 || lines[len(lines)-1] != "OK" {
		t.Fatalf("imaplib flow did not finish: %q %s", lines, stderr.String())
	}
}

// TestInteropMbsync syncs alice's folder tree both ways with isync's
// mbsync, then syncs again and checks that nothing moves.
func TestInteropMbsync(t *testing.T) {
	t.Parallel()
	mbsync := interop.Program(t, "mbsync")
	st, addr := interopServer(t)
	host, port, _ := strings.Cut(addr, ":")
	local := filepath.Join(t.TempDir(), "local")
	must(t, os.MkdirAll(local, 0o700))
	conf := mbsyncrc(t, host, port, local, "SSLType STARTTLS\nCertificateFile "+st.certFile)
	run := func() string {
		t.Helper()
		out, err := exec.Command(mbsync, "-c", conf, "-a").CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync: %v\n%s", err, out)
		}
		return string(out)
	}
	run()
	if n := countFiles(t, filepath.Join(local, "INBOX")); n != 3 {
		t.Fatalf("INBOX pulled %d messages", n)
	}
	for _, f := range []string{"Sent", "Trash", "Drafts"} {
		if _, err := os.Stat(filepath.Join(local, f)); err != nil {
			t.Fatalf("folder %s not pulled: %v", f, err)
		}
	}

	// Both ways: a local folder with a message and a new server message.
	for _, d := range []string{"cur", "new", "tmp"} {
		must(t, os.MkdirAll(filepath.Join(local, "Notes", d), 0o700))
	}
	must(t, os.WriteFile(filepath.Join(local, "Notes", "new", "1700000000.local1.host"), []byte(testMessage), 0o600))
	must(t, os.WriteFile(filepath.Join(local, "INBOX", "new", "1700000001.local2.host"), []byte(multipartMessage), 0o600))
	st.deliver("alice@local.example", "INBOX", strings.Replace(testMessage, "Hello there", "Fourth", 1))
	run()
	if n := countFiles(t, filepath.Join(local, "INBOX")); n != 5 {
		t.Fatalf("INBOX has %d local messages after the second sync", n)
	}
	cl := dial(t, addr)
	cl.startTLS()
	cl.login("alice@local.example")
	wantLine(t, cl.ok("STATUS Notes (MESSAGES)"), "MESSAGES 1")
	wantLine(t, cl.ok("STATUS INBOX (MESSAGES)"), "MESSAGES 5")
	before := cl.ok(`LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT))`)
	localBefore := listTree(t, local)

	// A re-sync with nothing to do changes nothing on either side.
	run()
	after := cl.ok(`LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT))`)
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Fatalf("server changed by an idle sync:\n%q\n%q", before, after)
	}
	if got := listTree(t, local); got != localBefore {
		t.Fatalf("local side changed by an idle sync:\n%s\n%s", localBefore, got)
	}
}

// mbsyncrc writes an mbsync configuration syncing every folder of alice
// both ways between the server at host:port and the Maildir local, with
// security its SSLType (and certificate) lines, and returns its path.
func mbsyncrc(t *testing.T, host, port, local, security string) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "mbsyncrc")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf(`IMAPAccount test
Host %s
Port %s
User alice@local.example
Pass "%s"
%s

IMAPStore remote
Account test

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Remove Both
Expunge Both
SyncState *
`, host, port, testPassword, security, local, local)), 0o600))
	return conf
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, d := range []string{"cur", "new"} {
		es, err := os.ReadDir(filepath.Join(dir, d))
		if err != nil {
			t.Fatal(err)
		}
		n += len(es)
	}
	return n
}

// listTree lists the message files below dir (not mbsync's state files).
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (filepath.Base(filepath.Dir(p)) == "cur" || filepath.Base(filepath.Dir(p)) == "new") {
			out = append(out, p)
		}
		return nil
	}))
	return strings.Join(out, "\n")
}

// TestInteropMutt reads INBOX with mutt in batch mode (under script(1)
// for a terminal) and pipes every message to a file.
func TestInteropMutt(t *testing.T) {
	t.Parallel()
	mutt := interop.Program(t, "mutt")
	scriptCmd := interop.Program(t, "script")
	st, addr := interopServer(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.txt")
	muttrc := filepath.Join(dir, "muttrc")
	must(t, os.WriteFile(muttrc, []byte(fmt.Sprintf(`set imap_user="alice@local.example"
set imap_pass="%s"
set ssl_starttls=yes
set ssl_force_tls=yes
set certificate_file="%s"
set ssl_verify_host=no
set header_cache=""
set message_cachedir=""
set mbox_type=Maildir
set folder="%s"
set record=""
set pipe_split=no
set wait_key=no
set confirmappend=no
set move=no
push "<tag-pattern>~A<enter><tag-prefix><pipe-message>cat > %s<enter><exit>"
`, testPassword, st.certFile, dir, out)), 0o600))
	output := runInTerminal(t, scriptCmd, dir, mutt, muttrc, fmt.Sprintf("imap://alice%%40local.example@%s/INBOX", addr))
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("mutt wrote nothing: %v\n%q", err, output)
	}
	for _, want := range []string{"Subject: Hello there", "Subject: Third", "Gr=FC=DFe aus M=FCnchen"} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("mutt output lacks %q:\n%s", want, b)
		}
	}
}

// runInTerminal runs a mutt-like program with the configuration muttrc
// on the folder url, under script(1) for the terminal it needs, with
// HOME set to home, and returns what it wrote to the terminal. It fails
// the test if the program fails or runs beyond 60 s.
func runInTerminal(t *testing.T, scriptCmd, home, prog, muttrc, url string) string {
	t.Helper()
	cmd := exec.Command(scriptCmd, "-qec", fmt.Sprintf("%s -n -F %s -f '%s'", prog, muttrc, url), "/dev/null")
	cmd.Env = append(os.Environ(), "TERM=vt100", "HOME="+home)
	done := make(chan error, 1)
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	must(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v\n%q", filepath.Base(prog), err, output.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not finish:\n%q", filepath.Base(prog), output.String())
	}
	return output.String()
}

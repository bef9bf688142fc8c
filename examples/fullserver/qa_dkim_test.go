package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mailagent/mailagent/internal/interop"
)

// qaPythonDKIM returns a Python interpreter that can import dkimpy's
// dkim module (Debian's python3-dkim), skipping the test when none can.
func qaPythonDKIM(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import dkim").Run() == nil {
			return path
		}
		tried = append(tried, path)
	}
	interop.Require(t, "no python3 with the dkim module (tried %v)", tried)
	return ""
}

// dkimVerify checks every DKIM-Signature of the message in argv[1] with
// dkimpy, answering key lookups from the zone-file lines in the other
// arguments, as "fullserver dkim keygen" printed them.
const qaDKIMVerify = `
import dkim, re, sys
recs = {}
for f in sys.argv[2:]:
    for line in open(f):
        m = re.match(r'^(\S+)\.\s+\d+\s+IN\s+TXT\s+(.*)$', line.strip())
        if m:
            recs[m.group(1)] = ''.join(re.findall(r'"([^"]*)"', m.group(2))).encode()
def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    return recs.get(name.rstrip('.'), b'')
msg = open(sys.argv[1], 'rb').read()
head = msg.split(b'\r\n\r\n', 1)[0]
n = len(re.findall(rb'(?im)^dkim-signature:', head))
d = dkim.DKIM(msg)
ok = [d.verify(idx=i, dnsfunc=dnsfunc) for i in range(n)]
print(n, ok)
sys.exit(0 if n and all(ok) else 1)
`

// TestQADKIMSignatureVerifiesWithDkimpy runs the README's DKIM flow on
// the running binary: dkim keygen (RSA and Ed25519) while it runs,
// SIGHUP, submit, and the delivered message carries signatures that
// dkimpy verifies against the published records keygen printed.
func TestQADKIMSignatureVerifiesWithDkimpy(t *testing.T) {
	t.Parallel()
	python := qaPythonDKIM(t)
	bin := qaBinary(t)
	dir := t.TempDir()
	s := qaStart(t, bin, qaConfig(t, dir, ""))
	s.admin(t, "", "domain", "add", "signed.test")
	s.admin(t, "pw-of-dora\n", "user", "add", "dora@signed.test")
	var recs []string
	for i, args := range [][]string{
		{"dkim", "keygen", "signed.test"},
		{"dkim", "keygen", "signed.test", "-selector", "ed", "-algo", "ed25519"},
	} {
		out := s.admin(t, "", args...)
		f := filepath.Join(dir, "record"+string(rune('0'+i))+".txt")
		if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, f)
	}
	if err := s.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	qaSubmit(t, s.addrs["submissions"], "dora@signed.test", "pw-of-dora", "dora@signed.test", "dora@signed.test",
		"From: Dora <dora@signed.test>\nTo: <dora@signed.test>\nSubject: signed\nMessage-ID: <qa-dkim@signed.test>\n\nSigned by the submission server.\n")

	newDir := filepath.Join(dir, "data", "mail", "signed.test", "dora", "Maildir", "new")
	es, err := os.ReadDir(newDir)
	if err != nil || len(es) != 1 {
		t.Fatalf("delivered messages in %s: %v %v", newDir, es, err)
	}
	msgPath := filepath.Join(newDir, es[0].Name())
	raw := qaRead(t, msgPath)
	for _, want := range []string{"a=rsa-sha256", "a=ed25519-sha256", "d=signed.test"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("delivered message lacks %q:\n%s", want, raw)
		}
	}
	out, err := exec.Command(python, append([]string{"-c", qaDKIMVerify, msgPath}, recs...)...).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "2 [True, True]") {
		t.Fatalf("dkimpy verification: %v\n%s\nmessage:\n%s", err, out, raw)
	}
	if err := s.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

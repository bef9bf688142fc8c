package dnsauth

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop"
)

// Cross-checks with the DKIM implementations Debian ships: dkimpy
// (python3-dkim) and OpenDKIM (opendkim, opendkim-tools). Keys travel
// through files, never through DNS: dkimpy gets a dnsfunc, OpenDKIM its
// TestPublicKeys file, we a MockResolver.

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// run runs a program with a deadline and returns its combined output.
func run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out.Bytes(), errb.Bytes())
	}
	return append(out.Bytes(), errb.Bytes()...)
}

var interopMessage = crlf(`From: Joe SixPack <joe@a.test>
To: Suzie Q <suzie@b.test>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700
Message-ID: <20030712040037.46341.5F8J@a.test>

Hi.

We lost the game.  Are you hungry yet?

Joe.
`)

// signedByUs signs interopMessage with an RSA and an Ed25519 key.
func signedByUs(t *testing.T) ([]byte, []Record) {
	t.Helper()
	var keys []*DKIMKey
	var recs []Record
	for _, c := range []struct{ sel, algo string }{{"rsa1", DKIMAlgoRSA}, {"ed1", DKIMAlgoEd25519}} {
		k, err := GenerateDKIMKey("a.test", c.sel, c.algo)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := k.Record()
		keys, recs = append(keys, k), append(recs, r)
	}
	sig, err := NewSigner(keys).Sign(context.Background(), strings.NewReader(interopMessage))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(sig + interopMessage), recs
}

// pythonFor returns the interpreter named by script's #! line.
func pythonFor(t *testing.T, script string) string {
	t.Helper()
	data, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	interp, ok := strings.CutPrefix(line, "#!")
	if !ok {
		t.Fatalf("%s has no #! line", script)
	}
	return strings.Fields(interp)[0]
}

// dkimpyVerify verifies signature index i of msg with dkimpy, answering
// key queries from recs.
const dkimpyVerify = `
import sys, json, dkim
recs = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    return recs.get(name.decode().rstrip('.'), '').encode()
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
ok = d.verify(idx=int(sys.argv[2]), dnsfunc=dnsfunc)
print('dkimpy-verify', 'pass' if ok else 'fail')
`

func recordsJSON(recs []Record) string {
	var b strings.Builder
	b.WriteString("{")
	for i, r := range recs {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + r.Name + `":"` + r.Value + `"`)
	}
	b.WriteString("}")
	return b.String()
}

func TestInteropDkimpyVerifiesOurs(t *testing.T) {
	t.Parallel()
	// The interpreter python3-dkim is installed for, not whichever
	// python3 comes first in PATH.
	py := pythonFor(t, interop.Program(t, "dkimverify"))
	msg, recs := signedByUs(t)
	for idx, algo := range []string{"rsa-sha256", "ed25519-sha256"} {
		out := run(t, msg, py, "-c", dkimpyVerify, recordsJSON(recs), string(rune('0'+idx)))
		if !bytes.Contains(out, []byte("dkimpy-verify pass")) {
			t.Errorf("dkimpy rejects our %s signature: %s", algo, out)
		}
	}
	// And notices tampering, so that the pass above means something.
	bad := bytes.Replace(msg, []byte("dinner"), []byte("lunch"), 1)
	if out := run(t, bad, py, "-c", dkimpyVerify, recordsJSON(recs), "0"); !bytes.Contains(out, []byte("dkimpy-verify fail")) {
		t.Errorf("dkimpy accepts a tampered message: %s", out)
	}
}

func TestInteropOpenDKIMVerifiesOurs(t *testing.T) {
	t.Parallel()
	opendkim := interop.Program(t, "opendkim")
	msg, recs := signedByUs(t)
	dir := t.TempDir()
	var keys strings.Builder
	for _, r := range recs {
		keys.WriteString(r.Name + " " + r.Value + "\n")
	}
	for name, data := range map[string]string{
		"keys": keys.String(),
		"conf": "TestPublicKeys " + filepath.Join(dir, "keys") + "\nMode v\nSyslog no\n",
		"msg":  string(msg),
		"bad":  strings.Replace(string(msg), "dinner", "lunch", 1),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := run(t, nil, opendkim, "-x", filepath.Join(dir, "conf"), "-t", filepath.Join(dir, "msg"), "-vv")
	for _, want := range []string{
		"dkim=pass (2048-bit key) header.d=a.test header.i=@a.test header.a=rsa-sha256 header.s=rsa1",
		"header.a=ed25519-sha256 header.s=ed1",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("OpenDKIM output lacks %q:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("dkim=fail")) {
		t.Errorf("OpenDKIM fails a signature:\n%s", out)
	}
	if out := run(t, nil, opendkim, "-x", filepath.Join(dir, "conf"), "-t", filepath.Join(dir, "bad"), "-vv"); !bytes.Contains(out, []byte("dkim=fail")) {
		t.Errorf("OpenDKIM accepts a tampered message:\n%s", out)
	}
}

func TestInteropWeVerifyDkimpy(t *testing.T) {
	t.Parallel()
	dknewkey := interop.Program(t, "dknewkey")
	dkimsign := interop.Program(t, "dkimsign")
	dir := t.TempDir()
	for _, c := range []struct{ ktype, alg string }{{"rsa", "rsa-sha256"}, {"ed25519", "ed25519-sha256"}} {
		base := filepath.Join(dir, c.ktype)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, dknewkey, "--ktype", c.ktype, base)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			cancel()
			t.Fatalf("dknewkey: %v\n%s", err, out)
		}
		cancel()
		record, err := os.ReadFile(base + ".dns")
		if err != nil {
			t.Fatal(err)
		}
		for _, canon := range []string{"simple", "relaxed"} {
			signed := run(t, []byte(interopMessage), dkimsign, "--hcanon", canon, "--bcanon", canon,
				"--signalg", c.alg, c.ktype, "a.test", base+".key")
			m := &MockResolver{}
			m.AddTXT(c.ktype+"._domainkey.a.test", strings.TrimSpace(string(record)))
			res, err := VerifyDKIM(context.Background(), m, bytes.NewReader(signed))
			if err != nil || len(res) != 1 || res[0].Status != DKIMPass || res[0].Algorithm != c.alg {
				t.Errorf("dkimpy %s %s/%s signature: %+v, %v\n%s", c.alg, canon, canon, res, err, signed)
			}
		}
	}
}

// zoneTXT joins the quoted strings of a zone-file TXT line, as
// opendkim-genkey writes it.
func zoneTXT(line string) string {
	var b strings.Builder
	for _, m := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(line, -1) {
		b.WriteString(m[1])
	}
	return b.String()
}

func TestInteropWeVerifyOpenDKIM(t *testing.T) {
	t.Parallel()
	genkey := interop.Program(t, "opendkim-genkey")
	opendkim := interop.Program(t, "opendkim")
	testmsg := interop.Program(t, "opendkim-testmsg")
	dir := t.TempDir()
	run(t, nil, genkey, "--directory="+dir, "--domain=a.test", "--selector=od1", "--bits=2048")
	zone, err := os.ReadFile(filepath.Join(dir, "od1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := &MockResolver{}
	m.AddTXT("od1._domainkey.a.test", zoneTXT(string(zone)))

	// The milter, in test mode, signs as it would for a local client.
	conf := fmt.Sprintf("Mode s\nSyslog no\nDomain a.test\nSelector od1\nKeyFile %s\nRequireSafeKeys false\n"+
		"SignatureAlgorithm rsa-sha256\nCanonicalization relaxed/relaxed\n", filepath.Join(dir, "od1.private"))
	for name, data := range map[string]string{"conf": conf, "msg": interopMessage} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := run(t, nil, opendkim, "-x", filepath.Join(dir, "conf"), "-t", filepath.Join(dir, "msg"), "-vv")
	sig := regexp.MustCompile(`(?s)hname='DKIM-Signature' hvalue='([^']*)'`).FindSubmatch(out)
	if sig == nil {
		t.Fatalf("no signature in OpenDKIM's output:\n%s", out)
	}
	signed := "DKIM-Signature: " + strings.ReplaceAll(string(sig[1]), "\n", "\r\n") + "\r\n" + interopMessage
	res, err := VerifyDKIM(context.Background(), m, strings.NewReader(signed))
	if err != nil || len(res) != 1 || res[0].Status != DKIMPass || res[0].Algorithm != "rsa-sha256" {
		t.Fatalf("OpenDKIM signature: %+v, %v\n%s", res, err, signed)
	}

	// opendkim-testmsg still signs with rsa-sha1, which RFC 8301 section
	// 3.1 forbids verifiers to accept.
	old := run(t, []byte(interopMessage), testmsg, "-C", "-d", "a.test", "-s", "od1", "-k", filepath.Join(dir, "od1.private"), "-t", dir)
	res, err = VerifyDKIM(context.Background(), m, bytes.NewReader(old))
	if err != nil || len(res) != 1 || res[0].Algorithm != "rsa-sha1" || res[0].Status != DKIMPermError {
		t.Errorf("rsa-sha1 signature: %+v, %v", res, err)
	}

	// Their private key loads as ours, and yields the record they wrote.
	pem, _ := os.ReadFile(filepath.Join(dir, "od1.private"))
	s, err := ParseDKIMPrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	ours, _ := (&DKIMKey{Domain: "a.test", Selector: "od1", Signer: s}).Record()
	mine, _ := ParseDKIMKeyRecord(ours.Value)
	theirs, err := ParseDKIMKeyRecord(zoneTXT(string(zone)))
	if err != nil || !bytes.Equal(mine.PublicKey, theirs.PublicKey) {
		t.Errorf("public key from their private key differs from their record: %v", err)
	}
}

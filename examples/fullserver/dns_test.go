package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/dnsauth"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestDKIMKeygenForeignDomain: keygen for a domain that is not in the
// domains table exits 1 with one line saying why and writes no key;
// -force makes the key; once the domain is added no flag is needed.
func TestDKIMKeygenForeignDomain(t *testing.T) {
	dir := t.TempDir()
	fails(t, dir, "", 1, "fullserver: dkim keygen: other.test is not a local domain; add it with 'fullserver domain add other.test', or give -force",
		"dkim", "keygen", "other.test", "-algo", "ed25519")
	if _, err := os.Stat(filepath.Join(dir, "dkim", "other.test")); !os.IsNotExist(err) {
		t.Fatalf("refused keygen left %v", err)
	}
	code, out, errs := fs(t, dir, "", "dkim", "keygen", "-force", "other.test", "-selector", "f1", "-algo", "ed25519")
	if code != 0 || !strings.HasPrefix(out, "f1._domainkey.other.test.\t") {
		t.Fatalf("keygen -force: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "dkim", "other.test", "f1.pem")); err != nil {
		t.Fatal(err)
	}
	ok(t, dir, "", "domain", "add", "other.test")
	if code, out, errs := fs(t, dir, "", "dkim", "keygen", "Other.Test", "-selector", "f2", "-algo", "ed25519"); code != 0 || !strings.HasPrefix(out, "f2._domainkey.other.test.\t") {
		t.Fatalf("keygen of a local domain: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestDKIMKeygenAndDNSRecords(t *testing.T) {
	data := t.TempDir()
	if code, _, errs := runCmd(t, "-data", data, "domain", "add", "a.test"); code != 0 {
		t.Fatalf("domain add: %d %s", code, errs)
	}
	code, out, errs := runCmd(t, "-data", data, "dkim", "keygen", "a.test", "-selector", "s1", "-algo", "ed25519")
	if code != 0 {
		t.Fatalf("keygen: %d %s", code, errs)
	}
	if !strings.HasPrefix(out, "s1._domainkey.a.test.\t3600\tIN\tTXT\t\"v=DKIM1; k=ed25519; p=") {
		t.Errorf("keygen printed %q", out)
	}
	fi, err := os.Stat(filepath.Join(data, "dkim", "a.test", "s1.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	// Same selector again: refused, the key is kept.
	if code, _, errs := runCmd(t, "-data", data, "dkim", "keygen", "a.test", "-selector", "s1"); code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("second keygen: %d %s", code, errs)
	}

	code, out, errs = runCmd(t, "-data", data, "dns", "records", "a.test", "-host", "mail.a.test", "-ip", "192.0.2.10")
	if code != 0 {
		t.Fatalf("records: %d %s", code, errs)
	}
	for _, want := range []string{
		"a.test.\t3600\tIN\tMX\t10 mail.a.test.\n",
		"mail.a.test.\t3600\tIN\tA\t192.0.2.10\n",
		"a.test.\t3600\tIN\tTXT\t\"v=spf1 ip4:192.0.2.10 -all\"\n",
		"s1._domainkey.a.test.\t3600\tIN\tTXT\t\"v=DKIM1; k=ed25519; p=",
		"_dmarc.a.test.\t3600\tIN\tTXT\t\"v=DMARC1; p=none; rua=mailto:postmaster@a.test\"\n",
		"10.2.0.192.in-addr.arpa.\t3600\tIN\tPTR\tmail.a.test.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("records lack %q:\n%s", want, out)
		}
	}
	if code, _, _ := runCmd(t, "-data", data, "dns", "records"); code != 2 {
		t.Errorf("records without DOMAIN: exit %d, want 2", code)
	}
	if code, _, errs := runCmd(t, "-data", data, "dns", "records", "a.test", "-ip", "192.0.2.10"); code != 1 || !strings.Contains(errs, "give -host") {
		t.Errorf("records with hostname localhost: %d %s", code, errs)
	}
}

// The seed installation published an MX whose value is the server's
// address. "dns check" names that mistake and prints the line to publish.
func TestDNSCheckSeedWrongMX(t *testing.T) {
	m := &dnsauth.MockResolver{}
	m.AddMX("viviansj520.cn", "203.0.113.25", 10) // the seed's mistake
	m.AddIP("mail.viviansj520.cn", net.ParseIP("203.0.113.25"))
	m.AddTXT("viviansj520.cn", "v=spf1 ip4:203.0.113.25 -all")
	m.AddTXT("mail.viviansj520.cn", "v=spf1 ip4:203.0.113.25 -all")
	m.AddTXT("_dmarc.viviansj520.cn", "v=DMARC1; p=none; rua=mailto:postmaster@viviansj520.cn")
	m.AddPTR(net.ParseIP("203.0.113.25"), "mail.viviansj520.cn")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- m.Serve(pc) }()
	defer func() {
		pc.Close()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()

	data := t.TempDir()
	conf := filepath.Join(data, "fullserver.toml")
	toml := "hostname = \"mail.viviansj520.cn\"\n[dns]\nresolver = \"" + pc.LocalAddr().String() + "\"\n"
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, "-data", data, "-config", conf, "dns", "check", "viviansj520.cn")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"wrong   MX    viviansj520.cn",
		"MX target 203.0.113.25 is an IP address",
		"publish: viviansj520.cn.\t3600\tIN\tMX\t10 mail.viviansj520.cn.",
		"ok      A     mail.viviansj520.cn",
		"ok      PTR   25.113.0.203.in-addr.arpa",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "need attention") {
		t.Errorf("stderr: %s", errs)
	}

	// Fixed, the check passes.
	m.Lock()
	m.MX["viviansj520.cn"][0].Host = "mail.viviansj520.cn."
	m.Unlock()
	if code, out, errs := runCmd(t, "-data", data, "-config", conf, "dns", "check", "viviansj520.cn"); code != 0 {
		t.Errorf("after the fix: exit %d\n%s%s", code, out, errs)
	}
}

// "dns records" prints the SRV records of the listeners the
// configuration has (RFC 6186/8314), "." for those that are off, and the
// autoconfig/autodiscover names when HTTPS is on.
func TestDNSRecordsClientServices(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fullserver.toml")
	if err := os.WriteFile(cfg, []byte(`hostname = "mail.a.test"
[listen]
submissions = ":465"
submission = ":587"
imaps = ":993"
imap = ""
pop3s = ":995"
pop3 = ""
https = ":443"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, "-data", dir, "-config", cfg, "dns", "records", "a.test", "-ip", "192.0.2.10")
	if code != 0 {
		t.Fatalf("records: %d %s", code, errs)
	}
	for _, want := range []string{
		"_submissions._tcp.a.test.\t3600\tIN\tSRV\t0 1 465 mail.a.test.\n",
		"_submission._tcp.a.test.\t3600\tIN\tSRV\t0 1 587 mail.a.test.\n",
		"_imaps._tcp.a.test.\t3600\tIN\tSRV\t0 1 993 mail.a.test.\n",
		"_imap._tcp.a.test.\t3600\tIN\tSRV\t0 0 0 .\n",
		"_pop3s._tcp.a.test.\t3600\tIN\tSRV\t0 1 995 mail.a.test.\n",
		"_pop3._tcp.a.test.\t3600\tIN\tSRV\t0 0 0 .\n",
		"autoconfig.a.test.\t3600\tIN\tCNAME\tmail.a.test.\n",
		"autodiscover.a.test.\t3600\tIN\tCNAME\tmail.a.test.\n",
		"_autodiscover._tcp.a.test.\t3600\tIN\tSRV\t0 1 443 mail.a.test.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("records lack %q:\n%s", want, out)
		}
	}
}

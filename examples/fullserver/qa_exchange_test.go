package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailagent/mailagent/dnsauth"
)

// qaPublish loads the zone-file lines "fullserver dns records" printed
// into m, as an administrator publishes them.
func qaPublish(t *testing.T, m *dnsauth.MockResolver, zone string) {
	t.Helper()
	line := regexp.MustCompile(`^(\S+)\.\s+\d+\s+IN\s+(\S+)\s+(.*)$`)
	quoted := regexp.MustCompile(`"([^"]*)"`)
	for _, l := range strings.Split(zone, "\n") {
		f := line.FindStringSubmatch(strings.TrimSpace(l))
		if f == nil {
			continue
		}
		value := strings.TrimSuffix(f[3], ".")
		if f[2] == "TXT" {
			var b strings.Builder
			for _, q := range quoted.FindAllStringSubmatch(f[3], -1) {
				b.WriteString(q[1])
			}
			value = b.String()
		}
		if err := m.AddRecord(dnsauth.Record{Name: f[1], Type: f[2], Value: value}); err != nil {
			t.Fatalf("publishing %q: %v", l, err)
		}
	}
}

// qaWaitFile waits for a file under dir whose content contains want:
// outbound delivery is asynchronous and offers no event to wait on.
func qaWaitFile(t *testing.T, dir, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		es, _ := os.ReadDir(dir)
		for _, e := range es {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err == nil && strings.Contains(string(b), want) {
				return string(b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message containing %q in %s", want, dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestQAExchangeBetweenTwoServers runs two binaries for two domains that
// find each other through MX records served to both from a loopback DNS
// server holding what "dns records" printed: submitted mail is signed,
// delivered by MX lookup and passes SPF, DKIM and DMARC at the other
// end; a forwarding added while the server runs sends mail on to the
// other domain; a recipient the other side refuses comes back to the
// sender as a delivery status notification, counted in the metrics.
func TestQAExchangeBetweenTwoServers(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	dns := &dnsauth.MockResolver{}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go dns.Serve(pc)
	t.Cleanup(func() { pc.Close() })
	resolver := fmt.Sprintf("[dns]\nresolver = %q\n", pc.LocalAddr().String())

	withDNS := func(cfg, extra string) {
		t.Helper()
		text := strings.Replace(string(qaRead(t, cfg)), "[dns]\nresolver = \"127.0.0.1:9\"\n", resolver+extra, 1)
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// far.test: the receiving side.
	dirB := t.TempDir()
	cfgB := qaConfig(t, dirB, "")
	withDNS(cfgB, "")
	b := qaStart(t, bin, cfgB)
	b.admin(t, "", "domain", "add", "far.test")
	b.admin(t, "pw-of-zed\n", "user", "add", "zed@far.test")
	qaPublish(t, dns, b.admin(t, "", "dns", "records", "far.test", "-host", "mail.far.test", "-ip", "127.0.0.1"))
	_, mxPort, _ := net.SplitHostPort(b.addrs["mx"])

	// near.test: sends to far.test's MX on its loopback port.
	dirA := t.TempDir()
	cfgA := qaConfig(t, dirA, "")
	withDNS(cfgA, "[queue]\nport = "+mxPort+"\n")
	a := qaStart(t, bin, cfgA)
	a.admin(t, "", "domain", "add", "near.test")
	a.admin(t, "pw-of-amy\n", "user", "add", "amy@near.test")
	// Ed25519: an RSA-2048 record is one TXT string over 255 bytes,
	// which this DNS server cannot send.
	a.admin(t, "", "dkim", "keygen", "near.test", "-algo", "ed25519")
	qaPublish(t, dns, a.admin(t, "", "dns", "records", "near.test", "-host", "mail.near.test", "-ip", "127.0.0.1"))
	if err := a.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}

	zedNew := filepath.Join(dirB, "data", "mail", "far.test", "zed", "Maildir", "new")
	qaSubmit(t, a.addrs["submissions"], "amy@near.test", "pw-of-amy", "amy@near.test", "zed@far.test",
		"From: Amy <amy@near.test>\nTo: <zed@far.test>\nSubject: across\nMessage-ID: <qa-across@near.test>\n\nBy MX lookup.\n")
	got := qaWaitFile(t, zedNew, "Subject: across")
	ar := got[:strings.Index(got, "Subject: across")]
	for _, want := range []string{"spf=pass", "dkim=pass header.d=near.test", "dmarc=pass"} {
		if !strings.Contains(ar, want) {
			t.Errorf("delivered message lacks %q:\n%s", want, got)
		}
	}

	a.admin(t, "", "alias", "add", "fwd@near.test", "zed@far.test")
	m := qaSMTP(t, a.addrs["mx"])
	m.smtp("EHLO client.test")
	m.smtp("MAIL FROM:<someone@elsewhere.test>")
	if r := m.smtp("RCPT TO:<fwd@near.test>"); !strings.HasPrefix(r, "250") {
		t.Fatalf("RCPT to a forwarding added while running: %q", r)
	}
	m.smtp("DATA")
	m.conn.Write([]byte("Subject: passed on\r\n\r\nvia the forwarding\r\n.\r\n"))
	if r := m.reply(); !strings.HasPrefix(r, "250") {
		t.Fatalf("end of DATA: %q", r)
	}
	m.smtp("QUIT")
	qaWaitFile(t, zedNew, "Subject: passed on")

	qaSubmit(t, a.addrs["submissions"], "amy@near.test", "pw-of-amy", "amy@near.test", "nobody@far.test",
		"From: <amy@near.test>\nTo: <nobody@far.test>\nSubject: to nobody\n\nNo such user there.\n")
	dsn := qaWaitFile(t, filepath.Join(dirA, "data", "mail", "near.test", "amy", "Maildir", "new"), "nobody@far.test")
	for _, want := range []string{"Content-Type: multipart/report; report-type=delivery-status", "Action: failed", "Status: 5.1.1"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("notification lacks %q:\n%s", want, dsn)
		}
	}
	// The queue logs (and so counts) a notification once it is
	// delivered, which is after it can be seen in the Maildir.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + a.addrs["metrics"] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(metrics), "mailagent_messages_bounced_total 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bounce not counted:\n%s", metrics)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if q := a.admin(t, "", "queue", "list"); q != "Mail queue is empty\n" {
		t.Errorf("queue not empty after delivery:\n%s", q)
	}
	for _, s := range []*qaServer{a, b} {
		if err := s.stop(t); err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	}
}

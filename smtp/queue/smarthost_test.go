package queue

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

const dovecotAuthConf = `instance_name = mailagent-auth-test
base_dir = @ROOT@/run
state_dir = @ROOT@/state
log_path = @ROOT@/dovecot.log
protocols = none
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u @ROOT@/passwd
}
userdb {
  driver = static
  args = uid=mail gid=mail home=/nonexistent
}
service auth {
  unix_listener @ROOT@/auth {
    mode = 0666
  }
}
`

// startDovecotAuth runs a Dovecot instance that only answers SASL
// requests (Postfix's smtpd_sasl_type = dovecot) on a Unix socket.
func startDovecotAuth(t *testing.T, user, pass string) string {
	t.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		interop.Require(t, "%s", "dovecot not installed (apt-get install dovecot-core)")
	}
	root := t.TempDir()
	openToMailUser(root)
	for _, d := range []string{"run", "state"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	conf := strings.ReplaceAll(dovecotAuthConf, "@ROOT@", root)
	if err := os.WriteFile(filepath.Join(root, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "passwd"), []byte(user+":{PLAIN}"+pass+"::::::\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runDovecot(t, bin, root)
	sock := filepath.Join(root, "auth")
	waitListening(t, "dovecot auth", sock)
	return sock
}

// TestPostfixSmartHost relays through a real Postfix as the smart host:
// STARTTLS with a verified certificate, AUTH PLAIN checked by Dovecot,
// and Postfix passing the message on to a receiver. A wrong password
// leaves the message queued with a temporary error.
func TestPostfixSmartHost(t *testing.T) {
	if why := postfixMissing(); why != "" {
		interop.Require(t, "%s", why)
	}
	authSock := startDovecotAuth(t, "relayuser", "s3cret")
	sink := outboundtest.Start(t, outboundtest.Options{})
	tlsCfg, pool := outboundtest.TLSConfig(t, "127.0.0.1")
	certDir := t.TempDir()
	cert := tlsCfg.Certificates[0]
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	pf := startPostfix(t, postfixConfig{sinkPort: sink.Port, main: fmt.Sprintf(`mynetworks =
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_tls_cert_file = %s
smtpd_tls_key_file = %s
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_received_header = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = %s
smtpd_error_sleep_time = 0
`, certFile, keyFile, authSock)})

	open := func(pass string) *fixture {
		f := &fixture{clock: newClock(), bounces: &recorder{}, dir: t.TempDir()}
		c, err := outbound.New(outbound.Options{Hostname: "mta.a.test", Resolver: resolver(),
			RelayHost: "smtp:[127.0.0.1]:" + strings.Split(pf.smtpd, ":")[1], TLSConfig: tlsClient(pool),
			Credentials: func(host string) *outbound.Credentials {
				return &outbound.Credentials{Username: "relayuser", Password: pass}
			}})
		if err != nil {
			t.Fatal(err)
		}
		f.q, err = New(Options{Dir: f.dir, Client: c, Bounces: f.bounces, Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.q.Close() })
		return f
	}

	bad := open("wrong")
	id := bad.enqueue(t, "alice@a.test", []string{"someone@far.test"}, signed)
	bad.runDue(t)
	in, err := bad.q.Inspect(context.Background(), id)
	if err != nil || in.Recipients[0].State != Queued || in.Recipients[0].Err == nil || in.Recipients[0].Err.Code/100 != 4 {
		t.Fatalf("wrong password: %+v, %v", in, err)
	}

	good := open("s3cret")
	good.enqueue(t, "alice@a.test", []string{"someone@far.test"}, signed)
	good.runDue(t)
	if ids := good.ids(t); len(ids) != 0 {
		in, _ := good.q.Inspect(context.Background(), ids[0])
		t.Fatalf("not accepted by Postfix: %+v", in.Recipients)
	}
	m := sink.Wait(t, 1, time.Minute)[0]
	data := string(m.Data)
	// Postfix adds Message-Id and Date for authenticated clients; the
	// signature and the body are as queued.
	sig, body, _ := strings.Cut(signed, "From:")
	body = body[strings.Index(body, "\r\n\r\n"):]
	if !strings.Contains(data, "with ESMTPSA") || !strings.Contains(data, sig) || !strings.HasSuffix(data, body) {
		t.Fatalf("relayed message:\n%s", data)
	}
	if m.From != "alice@a.test" || m.To[0] != "someone@far.test" {
		t.Fatalf("relayed envelope: %s -> %v", m.From, m.To)
	}
}

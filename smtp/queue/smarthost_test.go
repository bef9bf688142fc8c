package queue

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop/dovecottest"
	"github.com/mailagent/mailagent/internal/interop/postfixtest"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

// TestPostfixSmartHost relays through a real Postfix as the smart host:
// STARTTLS with a verified certificate, AUTH PLAIN checked by Dovecot,
// and Postfix passing the message on to a receiver. A wrong password
// leaves the message queued with a temporary error.
func TestPostfixSmartHost(t *testing.T) {
	t.Parallel()
	postfixtest.Check(t)
	// Dovecot's auth service alone answers Postfix's SASL requests
	// (smtpd_sasl_type = dovecot) on its socket.
	authSock := dovecottest.Start(t, dovecottest.Options{Users: map[string]string{"relayuser": "s3cret"}}).AuthSocket
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
		f.q, err = New(Options{Dir: f.dir, Courier: Outbound(c), Bounces: f.bounces, now: f.clock.Now})
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

package main

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/examples/fullserver/config"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

// Keys made while the server runs are used after a reload (SIGHUP).
func TestDKIMSignerReload(t *testing.T) {
	dir := t.TempDir()
	var d dkimSigner
	if err := d.load(dir); err != nil {
		t.Fatal(err)
	}
	msg := mail.BytesBody([]byte("From: alice@a.test\r\nTo: bob@b.test\r\nSubject: x\r\n\r\nbody\r\n"))
	ctx := context.Background()
	if h, err := d.Sign(ctx, &mail.Envelope{}, msg); err != nil || len(h) != 0 {
		t.Fatalf("without keys: %q, %v; want unsigned", h, err)
	}
	key, err := dnsauth.GenerateDKIMKey("a.test", "s1", dnsauth.DKIMAlgoEd25519)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dnsauth.SaveDKIMKey(dir, key); err != nil {
		t.Fatal(err)
	}
	if err := d.load(dir); err != nil {
		t.Fatal(err)
	}
	h, err := d.Sign(ctx, &mail.Envelope{}, msg)
	if err != nil || len(h) != 1 || !strings.HasPrefix(h[0], "DKIM-Signature:") || !strings.Contains(h[0], "d=a.test") {
		t.Fatalf("after reload: %q, %v", h, err)
	}
}

func TestNewLogger(t *testing.T) {
	var b strings.Builder
	l, err := newLogger(&b, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("message delivered", "id", "X")
	l.Debug("hidden")
	if got := b.String(); !strings.Contains(got, `"msg":"message delivered"`) || strings.Contains(got, "hidden") {
		t.Fatalf("json log: %q", got)
	}
	if _, err := newLogger(&b, "xml", "info"); err == nil {
		t.Fatal("xml format accepted")
	}
}

// A start that fails creates no first user: the password it would print
// "only now" would be lost.
func TestFailedStartCreatesNoFirstUser(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.TLS.CertFile = filepath.Join(cfg.DataDir, "missing.crt")
	cfg.TLS.KeyFile = filepath.Join(cfg.DataDir, "missing.key")
	var out strings.Builder
	err := runServer(context.Background(), cfg, slog.New(slog.DiscardHandler), &out)
	if err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Fatalf("start with a missing certificate: %v", err)
	}
	if strings.Contains(out.String(), "password") {
		t.Fatalf("a failed start printed a password:\n%s", out.String())
	}
	st := openDir(t, cfg.DataDir)
	if ds, err := st.ListDomains(context.Background()); err != nil || len(ds) != 0 {
		t.Fatalf("domains after a failed start: %v, %v", ds, err)
	}
}

// A relay whose certificate a private CA signed is trusted once
// relay.ca_file names that CA, and only then are credentials sent.
func TestRelayCAFile(t *testing.T) {
	serverTLS, _ := outboundtest.TLSConfig(t, "127.0.0.1")
	relay := outboundtest.Start(t, outboundtest.Options{TLS: serverTLS, Users: map[string]string{"u": "p"}})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serverTLS.Certificates[0].Certificate[0]})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	send := func(tc *tls.Config) []outbound.Result {
		c, err := outbound.New(outbound.Options{
			Hostname:    "mail.a.test",
			RelayHost:   fmt.Sprintf("smtp:[127.0.0.1]:%d", relay.Port),
			TLSConfig:   tc,
			Credentials: func(string) *outbound.Credentials { return &outbound.Credentials{Username: "u", Password: "p"} },
		})
		if err != nil {
			t.Fatal(err)
		}
		hop, err := outbound.ParseNextHop(fmt.Sprintf("smtp:[127.0.0.1]:%d", relay.Port))
		if err != nil {
			t.Fatal(err)
		}
		return c.Deliver(context.Background(), hop, &outbound.Message{
			From: "alice@a.test", Recipients: []string{"bob@b.test"},
			Body: mail.BytesBody([]byte("Subject: via relay\r\n\r\nhi\r\n")),
		})
	}
	if res := send(nil); res[0].Err == nil {
		t.Fatal("relay with an untrusted certificate accepted")
	}
	tc, err := relayTLSConfig(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if res := send(tc); res[0].Err != nil {
		t.Fatalf("relay with ca_file: %v", res[0].Err)
	}
	msgs := relay.Messages()
	if len(msgs) != 1 || msgs[0].User != "u" || !msgs[0].TLS {
		t.Fatalf("relay received %+v", msgs)
	}
	if _, err := relayTLSConfig(filepath.Join(t.TempDir(), "none.pem")); err == nil {
		t.Fatal("missing ca_file accepted")
	}
}

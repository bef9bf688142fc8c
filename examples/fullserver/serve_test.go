package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/examples/fullserver/config"

	"github.com/mailagent/mailagent/dnsauth"
	"github.com/mailagent/mailagent/smtp"
)

// Keys made while the server runs are used after a reload (SIGHUP).
func TestDKIMSignerReload(t *testing.T) {
	dir := t.TempDir()
	var d dkimSigner
	if err := d.load(dir); err != nil {
		t.Fatal(err)
	}
	msg := smtp.BytesBody([]byte("From: alice@a.test\r\nTo: bob@b.test\r\nSubject: x\r\n\r\nbody\r\n"))
	ctx := context.Background()
	if h, err := d.Sign(ctx, &smtp.Envelope{}, msg); err != nil || len(h) != 0 {
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
	h, err := d.Sign(ctx, &smtp.Envelope{}, msg)
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

package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fullserver.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The shipped example documents the defaults: loading it must give exactly
// Default(), so the two cannot drift apart.
func TestExampleFileIsTheDefaults(t *testing.T) {
	c, err := Load("../fullserver.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("example file differs from defaults:\n got %+v\nwant %+v", c, Default())
	}
}

func TestLoadOverridesAndTurnsListenersOff(t *testing.T) {
	c, err := Load(writeConfig(t, `
hostname = "mail.example.org"
[listen]
mx = ":25"
pop3 = ""
[store]
driver = "mysql"
dsn = "root@tcp(127.0.0.1:3306)/test"
[queue]
max_age = "48h"
[relay]
host = "[smtp.example.net]:587"
username = "u"
password = "p"
[dns]
timeout = "200ms"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "mail.example.org" || c.Listen.MX != ":25" || c.Listen.POP3 != "" {
		t.Errorf("overrides not applied: %+v", c.Listen)
	}
	if c.Listen.IMAP != Default().Listen.IMAP {
		t.Errorf("unset listener lost its default: %q", c.Listen.IMAP)
	}
	if c.Queue.MaxAge.Duration != 48*time.Hour {
		t.Errorf("max_age = %v", c.Queue.MaxAge)
	}
	if c.DNS.Timeout.Duration != 200*time.Millisecond || Default().DNS.Timeout.Duration != 5*time.Second {
		t.Errorf("dns.timeout = %v, default %v", c.DNS.Timeout, Default().DNS.Timeout)
	}
	if c.StoreDSN() != "root@tcp(127.0.0.1:3306)/test" {
		t.Errorf("StoreDSN = %q", c.StoreDSN())
	}
}

func TestLoadRefusesWithTheKeyName(t *testing.T) {
	for _, tc := range []struct{ text, key string }{
		{"hostnme = \"x\"", "hostnme"},
		{"[listen]\nimap4 = \":143\"", "listen.imap4"},
		{"[listen]\nimap = \"143\"", "listen.imap"},
		{"[store]\ndriver = \"oracle\"", "store.driver"},
		{"[store]\ndriver = \"mysql\"", "store.dsn"},
		{"[store]\ndriver = \"postgres\"", "store.dsn"},
		{"[limits]\nmax_recipients = 0", "limits.max_recipients"},
		{"[limits]\nmax_folders = 0", "limits.max_folders"},
		{"[limits]\nmax_folder_depth = -1", "limits.max_folder_depth"},
		{"[policy]\ndmarc = \"maybe\"", "policy.dmarc"},
		{"[queue]\nmax_age = \"forever\"", "max_age"},
		{"[tls]\ncert_file = \"a.pem\"", "tls.cert_file"},
		{"[log]\nformat = \"xml\"", "log.format"},
		{"[dns]\nresolver = \"1.1.1.1\"", "dns.resolver"},
		{"[dns]\ntimeout = \"0s\"", "dns.timeout"},
		{"[dns]\ntimeout = \"5\"", "timeout"},
		{"[relay]\nca_file = \"ca.pem\"", "relay.ca_file"},
		{"[listen]\nlmtp_networks = [\"10.0.0.0/33\"]", "listen.lmtp_networks"},
		{"[listen]\nlmtp_networks = [\"localhost\"]", "listen.lmtp_networks"},
		{"[listen]\ntrusted_proxies = [\"proxy.example\"]", "listen.trusted_proxies"},
		{"[proxy]\nbackend_tls = \"yes\"", "proxy.backend_tls"},
		{"[proxy]\nimap_port = 0", "proxy.imap_port"},
		{"[proxy]\nsource_address = \"proxy.example\"", "proxy.source_address"},
		{"[proxy]\nbackends = [\"a b\"]", "proxy.backends"},
		{"[proxy]\nconnect_timeout = \"0s\"", "proxy.connect_timeout"},
		{"[listen]\nlmtp_socket_mode = \"0999\"", "listen.lmtp_socket_mode"},
		{"[listen]\nlmtp_socket_mode = \"01777\"", "listen.lmtp_socket_mode"},
		{"[milter]\nmx = [\"inet:nohost\"]", "milter.mx"},
		{"[junk]\nfolder = \"\"", "junk.folder"},
		{"[junk.users]\n\"Alice@x.example\" = \"Spam\"", "junk.users"},
		{"[milter]\ndefault_action = \"quarantine\"", "milter.default_action"},
		{"[milter]\ncontent_timeout = \"0s\"", "milter.content_timeout"},
		{"[maildir]\npoll_interval = \"0s\"", "maildir.poll_interval"},
		{"[imap]\nnamespace_prefix = \"INBOX\"", "imap.namespace_prefix"},
	} {
		_, err := Load(writeConfig(t, tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v does not name %s", tc.text, err, tc.key)
		}
	}
}

func TestFindFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MAILAGENT_CONFIG", "")
	old := SystemFile
	SystemFile = filepath.Join(dir, "etc.toml")
	t.Cleanup(func() { SystemFile = old })
	if p, err := FindFile("", dir); err != nil || p != "" {
		t.Fatalf("no file: %q %v", p, err)
	}
	if err := os.WriteFile(SystemFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if p, _ := FindFile("", dir); p != SystemFile {
		t.Fatalf("system file not found: %q", p)
	}
	if err := os.WriteFile(filepath.Join(dir, "fullserver.toml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if p, _ := FindFile("", dir); p != filepath.Join(dir, "fullserver.toml") {
		t.Fatalf("data-dir file not found: %q", p)
	}
	if p, _ := FindFile("/etc/x.toml", dir); p != "/etc/x.toml" {
		t.Fatalf("explicit file ignored: %q", p)
	}
	// The documented order: -config, MAILAGENT_CONFIG, DATA, SystemFile.
	t.Setenv("MAILAGENT_CONFIG", "/srv/env.toml")
	if p, _ := FindFile("", dir); p != "/srv/env.toml" {
		t.Fatalf("MAILAGENT_CONFIG ignored: %q", p)
	}
	if p, _ := FindFile("/etc/x.toml", dir); p != "/etc/x.toml" {
		t.Fatalf("-config does not win over MAILAGENT_CONFIG: %q", p)
	}
}

func TestPathDefaultsIntoDataDir(t *testing.T) {
	c := Default()
	c.DataDir = "/srv/mail"
	if got := c.StoreDSN(); got != "/srv/mail/mailagent.db" {
		t.Errorf("StoreDSN = %q", got)
	}
	if got := c.Path("/var/spool/q", "queue"); got != "/var/spool/q" {
		t.Errorf("explicit path = %q", got)
	}
}

func TestLoadSendAs(t *testing.T) {
	c, err := Load(writeConfig(t, "[send_as]\n\"alice@example.org\" = [\"ceo@example.org\", \"@lists.example.org\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.SendAs["alice@example.org"]; len(got) != 2 || got[1] != "@lists.example.org" {
		t.Fatalf("send_as read as %v", c.SendAs)
	}
}

func TestJunkFolder(t *testing.T) {
	c, err := Load(writeConfig(t, "[junk]\nfolder = \"Junk\"\n[junk.domains]\n\"b.example\" = \"INBOX\"\n[junk.users]\n\"carol@b.example\" = \"Spam\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{"alice@a.example": "Junk", "bob@B.example": "INBOX", "carol@b.example": "Spam"} {
		if got := c.Junk.JunkFolder(addr); got != want {
			t.Errorf("JunkFolder(%q) = %q, want %q", addr, got, want)
		}
	}
}

// The poll of watched folders and the inotify watcher are set in
// [maildir], defaulting to 1s and on.
func TestMaildirPollSettings(t *testing.T) {
	if d := Default().Maildir; d.PollInterval.Duration != time.Second || !d.Watcher {
		t.Errorf("defaults: poll_interval %v, watcher %v; want 1s, true", d.PollInterval, d.Watcher)
	}
	c, err := Load(writeConfig(t, "[maildir]\npoll_interval = \"250ms\"\nwatcher = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Maildir.PollInterval.Duration != 250*time.Millisecond || c.Maildir.Watcher {
		t.Errorf("poll_interval %v, watcher %v; want 250ms, false", c.Maildir.PollInterval, c.Maildir.Watcher)
	}
}

package main

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The seed installation's four tables, exactly as its set-up creates
// them.
var qaSeedTables = []string{
	"CREATE TABLE domains (domain varchar(50) NOT NULL, PRIMARY KEY (domain) )",
	"CREATE TABLE forwardings (source varchar(80) NOT NULL, destination TEXT NOT NULL, PRIMARY KEY (source) )",
	"CREATE TABLE users (email varchar(80) NOT NULL, password varchar(20) NOT NULL, PRIMARY KEY (email) )",
	"CREATE TABLE transport ( domain varchar(128) NOT NULL default '', transport varchar(128) NOT NULL default '', UNIQUE KEY domain (domain) )",
}

// qaDovecotMaildir writes a Maildir in the bytes Dovecot 2.3 leaves
// behind (mail_location = maildir:BASE/%d/%n/Maildir, three messages,
// the second \Seen with the keyword $Important, as doveadm save
// and doveadm flags add left them), so that the test does
// not need a running Dovecot.
func qaDovecotMaildir(t *testing.T, md string) {
	t.Helper()
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"dovecot-uidlist": "3 V1795619681 N3 G5398501f61fb066b6e74000083ecc375\n" +
			"1 :1795619681.M525331P29806.vm,S=106,W=112\n" +
			"2 :1795619681.M894871P29828.vm,S=106,W=112\n" +
			"3 :1795619682.M195645P29843.vm,S=106,W=112\n",
		"dovecot-keywords": "0 $Important\n",
	}
	for i, name := range []string{
		"new/1795619681.M525331P29806.vm,S=106,W=112",
		"new/1795619681.M894871P29828.vm,S=106,W=112:2,Sa",
		"new/1795619682.M195645P29843.vm,S=106,W=112",
	} {
		files[name] = fmt.Sprintf("From: old@remote.test\nTo: olduser@migr.test\nSubject: old message %d\nMessage-ID: <old%d@remote.test>\n\nbody %d\n", i+1, i+1, i+1)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(md, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQAMigrationFromSeedMySQL points the binary at a fresh MariaDB
// database holding the seed's tables and rows (a password from MySQL's
// ENCRYPT(), a forwarding, a transport) and at a Maildir base holding
// Dovecot's files: the old password logs in over IMAP and is upgraded to
// argon2id in place, UIDVALIDITY, UIDs, keywords and POP3 UIDLs are
// Dovecot's, and mail through the MX to the forwarding lands in the
// user's Maildir.
func TestQAMigrationFromSeedMySQL(t *testing.T) {
	t.Parallel()
	dsn := tempMySQL(t, "qa_seed_")
	bin := qaBinary(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := append(append([]string{}, qaSeedTables...),
		"INSERT INTO domains (domain) VALUES ('migr.test')",
		"INSERT INTO users (email, password) VALUES ('olduser@migr.test', ENCRYPT('oldpw', 'zP'))",
		"INSERT INTO forwardings (source, destination) VALUES ('fwd@migr.test', 'olduser@migr.test')",
		"INSERT INTO transport (domain, transport) VALUES ('lists.migr.test', 'lmtp:[127.0.0.1]:24')",
	)
	qaExec(t, db, stmts...)
	var legacy string
	if err := db.QueryRow("SELECT password FROM users WHERE email = 'olduser@migr.test'").Scan(&legacy); err != nil || len(legacy) != 13 {
		t.Fatalf("ENCRYPT() hash %q: %v (this MariaDB lacks ENCRYPT?)", legacy, err)
	}

	dir := t.TempDir()
	vmail := filepath.Join(dir, "vmail")
	md := filepath.Join(vmail, "migr.test", "olduser", "Maildir")
	qaDovecotMaildir(t, md)
	conf := qaMySQLConfig(t, dir, dsn, vmail)
	if out, err := exec.Command(bin, "-config", conf, "migrate").CombinedOutput(); err != nil {
		t.Fatalf("fullserver migrate: %v\n%s", err, out)
	}
	s := qaStart(t, bin, conf)

	c := qaDial(t, s.addrs["imaps"], true)
	c.line()
	if _, done := c.imap("LOGIN olduser@migr.test oldpw"); !strings.HasPrefix(done, "OK") {
		t.Fatalf("LOGIN with the ENCRYPT() password: %q", done)
	}
	un, done := c.imap("STATUS INBOX (MESSAGES UIDVALIDITY UIDNEXT)")
	if !strings.HasPrefix(done, "OK") || !strings.Contains(strings.Join(un, "\n"), "UIDVALIDITY 1795619681") || !strings.Contains(strings.Join(un, "\n"), "MESSAGES 3") {
		t.Errorf("STATUS of Dovecot's INBOX: %q\n%s", done, strings.Join(un, "\n"))
	}
	c.imap("SELECT INBOX")
	un, _ = c.imap("UID FETCH 2 (FLAGS)")
	if got := strings.Join(un, "\n"); !strings.Contains(got, `\Seen`) || !strings.Contains(got, "$Important") {
		t.Errorf("Dovecot's flags and keyword on UID 2: %s", got)
	}
	c.imap("LOGOUT")

	p := qaDial(t, s.addrs["pop3s"], true)
	p.line()
	p.pop("USER olduser@migr.test")
	if l := p.pop("PASS oldpw"); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("POP3S PASS: %q", l)
	}
	// Dovecot's default pop3_uidl_format %08Xu%08Xv.
	if l := p.pop("UIDL 1"); l != "+OK 1 000000016b06fb61" {
		t.Errorf("UIDL 1 = %q, want Dovecot's 000000016b06fb61", l)
	}
	p.pop("QUIT")

	var upgraded string
	if err := db.QueryRow("SELECT password FROM users WHERE email = 'olduser@migr.test'").Scan(&upgraded); err != nil {
		t.Fatal(err)
	}
	if upgraded == legacy || !strings.Contains(upgraded, "argon2id") {
		t.Errorf("password after login = %q, want an argon2id upgrade of %q", upgraded, legacy)
	}

	m := qaSMTP(t, s.addrs["mx"])
	m.smtp("EHLO client.test")
	m.smtp("MAIL FROM:<someone@remote.test>")
	if r := m.smtp("RCPT TO:<fwd@migr.test>"); !strings.HasPrefix(r, "250") {
		t.Fatalf("RCPT to the seed's forwarding: %q", r)
	}
	if r := m.smtp("RCPT TO:<nobody@migr.test>"); !strings.HasPrefix(r, "550") {
		t.Errorf("RCPT to an unknown user: %q", r)
	}
	m.smtp("DATA")
	m.conn.Write([]byte("Subject: after migration\r\n\r\nhello\r\n.\r\n"))
	if r := m.reply(); !strings.HasPrefix(r, "250") {
		t.Fatalf("end of DATA: %q", r)
	}
	m.smtp("QUIT")
	// The new message continues Dovecot's UID sequence.
	c = qaDial(t, s.addrs["imaps"], true)
	c.line()
	c.imap("LOGIN olduser@migr.test oldpw")
	c.imap("SELECT INBOX")
	un, done = c.imap("UID FETCH 4 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	if got := strings.Join(un, "\n"); !strings.HasPrefix(done, "OK") || !strings.Contains(got, "Subject: after migration") {
		t.Errorf("forwarded message as UID 4: %q\n%s", done, got)
	}
	c.imap("LOGOUT")
	if err := s.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

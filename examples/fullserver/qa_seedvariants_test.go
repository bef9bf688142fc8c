package main

import (
	"crypto/tls"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop"
)

// TestQAMigrationSeedVariants moves the common variant of the seed's
// tutorial to the built binary: tables created ENGINE=MyISAM, a quota
// column (bytes) on users, a Dovecot Maildir whose maildirsize holds a
// limit the directory does not. fullserver migrate (as the owner, with
// -convert-myisam) and a server running as the seed's mail_admin (rows
// only): every user logs in over IMAP, POP3 and submission; the column's
// quota and Dovecot's maildirsize limit are both in force (GETQUOTAROOT,
// 552 5.2.2) and the definition line is not rewritten; Dovecot's UIDs and
// flags are served; no row is lost or changed but for password upgrades.
func TestQAMigrationSeedVariants(t *testing.T) {
	t.Parallel()
	root, db := tempMySQLDB(t, "qa_variant_")
	bin := qaBinary(t)
	myisam := []string{
		"CREATE TABLE domains (domain varchar(50) NOT NULL, PRIMARY KEY (domain) ) ENGINE=MyISAM",
		"CREATE TABLE forwardings (source varchar(80) NOT NULL, destination TEXT NOT NULL, PRIMARY KEY (source) ) ENGINE=MyISAM",
		"CREATE TABLE users (email varchar(80) NOT NULL, password varchar(20) NOT NULL, quota bigint(20) NOT NULL DEFAULT 0, PRIMARY KEY (email) ) ENGINE=MyISAM",
		"CREATE TABLE transport ( domain varchar(128) NOT NULL default '', transport varchar(128) NOT NULL default '', UNIQUE KEY domain (domain) ) ENGINE=MyISAM",
		"INSERT INTO domains (domain) VALUES ('migr.test')",
		"INSERT INTO users (email, password, quota) VALUES ('col@migr.test', ENCRYPT('colpass1', 'cP'), 10485760)",
		"INSERT INTO users (email, password, quota) VALUES ('dove@migr.test', ENCRYPT('dovepass', 'dP'), 0)",
		"INSERT INTO forwardings (source, destination) VALUES ('all@migr.test', 'col@migr.test,dove@migr.test')",
		"INSERT INTO transport (domain, transport) VALUES ('lists.migr.test', 'lmtp:[127.0.0.1]:24')",
	}
	qaExec(t, db, myisam...)
	rows := func() string {
		t.Helper()
		var b strings.Builder
		for _, q := range []string{
			"SELECT CONCAT_WS('|', domain) FROM domains ORDER BY 1",
			"SELECT CONCAT_WS('|', source, destination) FROM forwardings ORDER BY 1",
			"SELECT CONCAT_WS('|', domain, transport) FROM transport ORDER BY 1",
			"SELECT CONCAT_WS('|', email, quota) FROM users ORDER BY 1",
		} {
			rs, err := db.Query(q)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			for rs.Next() {
				var s string
				rs.Scan(&s)
				b.WriteString(s + "\n")
			}
			rs.Close()
		}
		return b.String()
	}
	before := rows()

	dir := t.TempDir()
	vmail := filepath.Join(dir, "vmail")
	md := filepath.Join(vmail, "migr.test", "dove", "Maildir")
	qaDovecotMaildir(t, md)
	// Dovecot's quota plugin: a 2000-byte limit and the three messages.
	size := filepath.Join(md, "maildirsize")
	if err := os.WriteFile(size, []byte("2000S\n318 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	limited, grant := interop.LimitedUser(t, "mysql", root, db)
	grant()
	conf := qaMySQLConfig(t, dir, limited, vmail)
	out, err := exec.Command(bin, "-config", conf, "migrate", "-dsn", root, "-convert-myisam").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "UPDATE users SET quota_bytes = quota") {
		t.Fatalf("fullserver migrate: %v\n%s", err, out)
	}
	s := qaStart(t, bin, conf)

	tc := &tls.Config{InsecureSkipVerify: true}
	for _, u := range [][2]string{{"col@migr.test", "colpass1"}, {"dove@migr.test", "dovepass"}} {
		for _, proto := range []string{"smtp", "imap", "pop3"} {
			w, err := dialWire(s.addrs[implicitTLS[proto]], "127.0.0.1", tc, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			r, err := w.login(proto, u[0], u[1])
			w.conn.Close()
			if err != nil || !loginSucceeded(proto, r) {
				t.Errorf("%s login of %s: %q, %v", proto, u[0], r, err)
			}
		}
	}

	quotaRoot := func(user, pass string) string {
		c := qaDial(t, s.addrs["imaps"], true)
		c.line()
		if _, done := c.imap(`LOGIN "` + user + `" "` + pass + `"`); !strings.HasPrefix(done, "OK") {
			t.Fatalf("LOGIN %s: %s", user, done)
		}
		un, _ := c.imap("GETQUOTAROOT INBOX")
		if user == "dove@migr.test" {
			c.imap("SELECT INBOX")
			if fl, _ := c.imap("UID FETCH 2 (FLAGS)"); !strings.Contains(strings.Join(fl, "\n"), `\Seen`) {
				t.Errorf("Dovecot's flags on UID 2: %q", fl)
			}
		}
		c.imap("LOGOUT")
		return strings.Join(un, "\n")
	}
	// RFC 9208 STORAGE is in KiB: 10485760 bytes is 10240.
	if got := quotaRoot("col@migr.test", "colpass1"); !strings.Contains(got, "STORAGE 0 10240") {
		t.Errorf("GETQUOTAROOT of the user with a quota column: %s", got)
	}
	if got := quotaRoot("dove@migr.test", "dovepass"); !strings.Contains(got, "(STORAGE 1 1)") && !strings.Contains(got, "(STORAGE 0 1)") {
		t.Errorf("GETQUOTAROOT of the user with Dovecot's maildirsize: %s", got)
	}

	// Over Dovecot's 2000 bytes: refused at the end of DATA.
	m := qaSMTP(t, s.addrs["mx"])
	m.dialog([2]string{"EHLO client.test", "250"}, [2]string{"MAIL FROM:<someone@remote.test>", "250"},
		[2]string{"RCPT TO:<dove@migr.test>", "250"}, [2]string{"DATA", "354"})
	m.conn.Write([]byte("Subject: too big\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 40) + ".\r\n"))
	if r := m.reply(); !strings.HasPrefix(r, "552 5.2.2") {
		t.Errorf("a 2.6 KB message over Dovecot's 2000-byte quota: %q, want 552 5.2.2", r)
	}
	m.smtp("QUIT")
	if data := qaRead(t, size); !strings.HasPrefix(string(data), "2000S\n") {
		t.Errorf("maildirsize's limit rewritten: %q", data)
	}
	if err := s.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if after := rows(); after != before {
		t.Errorf("directory rows changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	var hashes int
	if err := db.QueryRow("SELECT COUNT(*) FROM users WHERE password LIKE '%argon2id%'").Scan(&hashes); err != nil || hashes != 2 {
		t.Errorf("upgraded passwords: %d, %v; want both users' upgraded", hashes, err)
	}
}

// qaExec runs each statement on db, failing the test at the first error.
func qaExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// qaMySQLConfig writes qaConfig's configuration with the directory on
// MySQL at dsn and the Maildirs under vmail, as a seed installation has
// them.
func qaMySQLConfig(t *testing.T, dir, dsn, vmail string) string {
	t.Helper()
	conf := qaConfig(t, dir, "")
	extra := fmt.Sprintf("[store]\ndriver = \"mysql\"\ndsn = %q\n[maildir]\nbase = %q\n", dsn, vmail)
	if err := os.WriteFile(conf, append(qaRead(t, conf), extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

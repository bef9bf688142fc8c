package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailagent/mailagent/internal/interop"
)

// lmtpSend delivers one message over LMTP and returns the error of any
// step (for use from goroutines).
func lmtpSend(addr, rcpt, subject string) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	reply := func() (string, error) {
		for {
			l, err := r.ReadString('\n')
			if err != nil || len(l) < 4 || l[3] != '-' {
				return strings.TrimSpace(l), err
			}
		}
	}
	for _, step := range [][2]string{
		{"", "220"}, {"LHLO qa.test", "250"}, {"MAIL FROM:<load@qa.test>", "250"},
		{"RCPT TO:<" + rcpt + ">", "250"}, {"DATA", "354"},
		{"Subject: " + subject + "\r\nFrom: load@qa.test\r\n\r\n" + strings.Repeat("x", len(subject)*7) + "\r\n.", "250"},
		{"QUIT", "221"},
	} {
		if step[0] != "" {
			if _, err := fmt.Fprintf(conn, "%s\r\n", step[0]); err != nil {
				return err
			}
		}
		l, err := reply()
		if err != nil || !strings.HasPrefix(l, step[1]) {
			return fmt.Errorf("%q: %q, %v", step[0], l, err)
		}
	}
	return nil
}

// imapFlagLoop changes the flags of every message of the load over
// IMAPS until stop is closed, renaming their files (new/ to cur/, flags
// in the name) while a backup lists them; it returns the first error.
func imapFlagLoop(addr string, stop <-chan struct{}) error {
	conn, err := tls.Dial("tcp", addr, qaTLS)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(conn)
	n := 0
	var found []string // the last SEARCH's UIDs
	cmd := func(c string) error {
		n++
		tag := fmt.Sprintf("f%d", n)
		fmt.Fprintf(conn, "%s %s\r\n", tag, c)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if rest, ok := strings.CutPrefix(l, "* SEARCH"); ok {
				found = strings.Fields(rest)
			}
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					return fmt.Errorf("%s: %s", c, l)
				}
				return nil
			}
		}
	}
	if _, err := r.ReadString('\n'); err != nil {
		return err
	}
	if err := cmd("LOGIN u@b.test pw-of-u"); err != nil {
		return err
	}
	if err := cmd("SELECT INBOX"); err != nil {
		return err
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return cmd("LOGOUT")
		default:
		}
		op := "+"
		if i%2 == 1 {
			op = "-"
		}
		// Only the messages of the load: "21:*" would name UID 20 while
		// there is none past it.
		if err := cmd(`UID SEARCH SUBJECT "during"`); err != nil {
			return err
		}
		if len(found) == 0 {
			continue
		}
		if err := cmd("UID STORE " + strings.Join(found, ",") + " " + op + `FLAGS.SILENT (\Seen $Load)`); err != nil {
			return err
		}
	}
}

// imapState logs in over IMAPS and returns UID → "FLAGS size" of INBOX,
// \Recent left out (it belongs to a session, not to the message).
func imapState(t *testing.T, addr, user, pass string) map[string]string {
	t.Helper()
	c := qaDial(t, addr, true)
	c.line()
	if _, done := c.imap("LOGIN " + user + " " + pass); !strings.HasPrefix(done, "OK") {
		t.Fatalf("LOGIN: %s", done)
	}
	if _, done := c.imap("EXAMINE INBOX"); !strings.HasPrefix(done, "OK") {
		t.Fatalf("EXAMINE: %s", done)
	}
	lines, done := c.imap("UID FETCH 1:* (UID FLAGS RFC822.SIZE)")
	if !strings.HasPrefix(done, "OK") {
		t.Fatalf("FETCH: %s", done)
	}
	uidRe, flagsRe, sizeRe := regexp.MustCompile(`UID (\d+)`), regexp.MustCompile(`FLAGS \(([^)]*)\)`), regexp.MustCompile(`RFC822\.SIZE (\d+)`)
	out := map[string]string{}
	for _, l := range lines {
		u, f, s := uidRe.FindStringSubmatch(l), flagsRe.FindStringSubmatch(l), sizeRe.FindStringSubmatch(l)
		if u == nil || f == nil || s == nil {
			t.Fatalf("FETCH line %q", l)
		}
		flags := slices.DeleteFunc(strings.Fields(f[1]), func(s string) bool { return s == `\Recent` })
		slices.Sort(flags)
		out[u[1]] = strings.Join(flags, " ") + " " + s[1]
	}
	c.imap("LOGOUT")
	return out
}

// A backup made while mail keeps arriving, restored into a new data
// directory, gives a server with every message acknowledged before the
// backup started, under its UID and with its flags and keywords.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	dir := t.TempDir()
	cfg := qaConfig(t, dir, "")
	s := qaStart(t, bin, cfg)
	s.admin(t, "", "domain", "add", "b.test")
	s.admin(t, "pw-of-u\n", "user", "add", "-force", "u@b.test")
	for i := range 20 {
		if err := lmtpSend(s.addrs["lmtp"], "u@b.test", fmt.Sprintf("before %d", i)+strings.Repeat("y", i)); err != nil {
			t.Fatal(err)
		}
	}
	c := qaDial(t, s.addrs["imaps"], true)
	c.line()
	c.imap("LOGIN u@b.test pw-of-u")
	c.imap("SELECT INBOX")
	for _, cmd := range []string{`UID STORE 1:5 +FLAGS (\Seen)`, `UID STORE 3,7 +FLAGS (\Flagged $Work)`, `UID STORE 9 +FLAGS (\Answered)`} {
		if _, done := c.imap(cmd); !strings.HasPrefix(done, "OK") {
			t.Fatalf("%s: %s", cmd, done)
		}
	}
	before := imapState(t, s.addrs["imaps"], "u@b.test", "pw-of-u")
	if len(before) != 20 || !strings.HasPrefix(before["3"], `$Work \Flagged \Seen `) {
		t.Fatalf("before the backup: %v", before)
	}

	// Load: deliveries one after another all through the backup, and
	// flag changes renaming the files of those delivered meanwhile.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var loadErr, flagErr error
	var delivered int
	wg.Add(2)
	go func() {
		defer wg.Done()
		flagErr = imapFlagLoop(s.addrs["imaps"], stop)
	}()
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := lmtpSend(s.addrs["lmtp"], "u@b.test", fmt.Sprintf("during %d", i)); err != nil {
				loadErr = err
				return
			}
			delivered++
		}
	}()
	bdir := filepath.Join(t.TempDir(), "backup")
	out, err := exec.Command(bin, "-config", cfg, "backup", bdir).CombinedOutput()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if loadErr != nil || flagErr != nil {
		t.Fatalf("during the backup: delivery %v, flag changes %v", loadErr, flagErr)
	}
	t.Logf("%s; %d messages delivered meanwhile", strings.TrimSpace(string(out)), delivered)
	// Message files are shared with the store, not copied.
	files, _ := filepath.Glob(filepath.Join(bdir, "mail", "b.test", "u", "Maildir", "cur", "*"))
	if len(files) == 0 {
		t.Fatal("no message in the backup's cur/")
	}
	if st, err := os.Stat(files[0]); err != nil || st.Sys().(*syscall.Stat_t).Nlink < 2 {
		t.Errorf("message file in the backup is not a hard link: %v %v", st, err)
	}

	dir2 := t.TempDir()
	cfg2 := qaConfig(t, dir2, "")
	if out, err := exec.Command(bin, "-config", cfg2, "restore", bdir).CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	s2 := qaStart(t, bin, cfg2)
	after := imapState(t, s2.addrs["imaps"], "u@b.test", "pw-of-u")
	for uid, want := range before {
		if after[uid] != want {
			t.Errorf("UID %s after restore: %q, want %q", uid, after[uid], want)
		}
	}
	if len(after) < len(before) {
		t.Errorf("restored %d messages, fewer than the %d before the backup", len(after), len(before))
	}

	// Restore refuses a data directory in use, and a backup that changed.
	if out, err := exec.Command(bin, "-config", cfg2, "restore", bdir).CombinedOutput(); err == nil || !strings.Contains(string(out), "restore into a new data directory") {
		t.Errorf("restore over a data directory: %v %s", err, out)
	}
	f, err := os.OpenFile(filepath.Join(bdir, "mailagent.db"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("x"))
	f.Close()
	cfg3 := qaConfig(t, t.TempDir(), "")
	if out, err := exec.Command(bin, "-config", cfg3, "restore", bdir).CombinedOutput(); err == nil || !strings.Contains(string(out), "missing or changed in the backup: mailagent.db") {
		t.Errorf("restore of a changed backup: %v %s", err, out)
	}
}

// With a MariaDB directory, backup holds mariadb-dump's consistent dump
// of it, and restore says how to load it instead of pretending to.
func TestBackupMySQLDump(t *testing.T) {
	interop.Program(t, "mariadb-dump")
	dsn := tempMySQL(t, "mailagent_backup_")
	dir := storeDir(t, "mysql", dsn)
	ok(t, dir, "", "migrate")
	ok(t, dir, "", "domain", "add", "dump.test")
	ok(t, dir, "pw\n", "user", "add", "-force", "alice@dump.test")
	bdir := filepath.Join(t.TempDir(), "backup")
	if code, _, errs := fs(t, dir, "", "backup", bdir); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errs)
	}
	dump, err := os.ReadFile(filepath.Join(bdir, "directory.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CREATE TABLE `domains`", "'dump.test'", "'alice@dump.test'"} {
		if !strings.Contains(string(dump), want) {
			t.Errorf("dump lacks %s", want)
		}
	}
	manifest, _ := os.ReadFile(filepath.Join(bdir, "MANIFEST.json"))
	if !strings.Contains(string(manifest), `"driver": "mysql"`) || !strings.Contains(string(manifest), `"path": "directory.sql"`) {
		t.Errorf("manifest:\n%s", manifest)
	}
	code, _, errs := fs(t, storeDir(t, "mysql", dsn), "", "restore", bdir)
	if code != 0 || !strings.Contains(errs, "mariadb DATABASE < "+filepath.Join(bdir, "directory.sql")) {
		t.Errorf("restore: exit %d: %s", code, errs)
	}
}

// A message renamed between the listing of its folder and its link (a
// flag change, new/ to cur/) is saved under its new name; one expunged
// meanwhile is left out.
func TestBackupFindsRenamedMessage(t *testing.T) {
	folder := filepath.Join(t.TempDir(), "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(folder, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	const key = "1765000000.M1P2Q3.host,S=5"
	if err := os.WriteFile(filepath.Join(folder, "cur", key+":2,S"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &backup{dst: t.TempDir()}
	os.MkdirAll(filepath.Join(b.dst, "mail", "cur"), 0o700)
	// Listed in new/ without flags; now in cur/ as seen.
	if err := b.renamed(folder, "mail", key); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(b.dst, "mail", "cur", key+":2,S")); err != nil || string(data) != "hello" {
		t.Fatalf("renamed message in the backup: %q, %v", data, err)
	}
	if len(b.m.Files) != 1 || b.m.Files[0].Path != "mail/cur/"+key+":2,S" || b.m.Files[0].Size != 5 {
		t.Fatalf("manifest: %+v", b.m.Files)
	}
	// The listing of cur/ then comes to it: saved once.
	if err := b.messages(folder, "mail", "cur"); err != nil || len(b.m.Files) != 1 {
		t.Fatalf("cur/ after the rename was followed: %v, %+v", err, b.m.Files)
	}
	if err := b.renamed(folder, "mail", "1765000001.M9P9Q9.host,S=1:2,"); err != nil || len(b.m.Files) != 1 {
		t.Fatalf("expunged message: %v, %+v", err, b.m.Files)
	}
}

// BenchmarkBackupMaildir backs up one folder of 1,000 messages of 20 KiB
// with message files hard-linked (what backup does on one file system)
// and copied (the baseline: another file system, or a plain cp).
func BenchmarkBackupMaildir(b *testing.B) {
	src := filepath.Join(b.TempDir(), "mail")
	folder := filepath.Join(src, "b.test", "u", "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(folder, sub), 0o700)
	}
	body := []byte(strings.Repeat("0123456789abcdef", 20<<10/16))
	for i := range 1000 {
		os.WriteFile(filepath.Join(folder, "cur", fmt.Sprintf("1765000000.M%dP1Q1.h,S=%d:2,S", i, len(body))), body, 0o600)
	}
	os.WriteFile(filepath.Join(folder, "dovecot-uidlist"), []byte("3 V1 N1001\n"), 0o600)
	for _, mode := range []struct {
		name string
		copy bool
	}{{"link", false}, {"copy", true}} {
		b.Run(mode.name, func(b *testing.B) {
			for b.Loop() {
				bk := &backup{dst: b.TempDir(), host: "h", copyMessages: mode.copy}
				if err := bk.tree(context.Background(), backupPart{"mail", src}); err != nil {
					b.Fatal(err)
				}
				if len(bk.m.Files) != 1001 {
					b.Fatalf("%d files", len(bk.m.Files))
				}
			}
		})
	}
}

// With a PostgreSQL directory, backup holds pg_dump's dump of it.
func TestBackupPostgresDump(t *testing.T) {
	interop.Program(t, "pg_dump")
	base := interop.PostgresDSN(t)
	root := interop.OpenPostgres(t, base)
	name := fmt.Sprintf("mailagent_backup_%d", time.Now().UnixNano())
	if _, err := root.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Exec("DROP DATABASE " + name + " WITH (FORCE)") })
	// The same server and user, the new database: a URL's path, or a
	// key=value DSN's last dbname.
	dsn := base + " dbname=" + name
	if u, err := url.Parse(base); err == nil && u.Scheme != "" {
		u.Path = "/" + name
		dsn = u.String()
	}
	dir := storeDir(t, "postgres", dsn)
	ok(t, dir, "", "migrate")
	ok(t, dir, "", "domain", "add", "pgdump.test")
	bdir := filepath.Join(t.TempDir(), "backup")
	if code, _, errs := fs(t, dir, "", "backup", bdir); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errs)
	}
	dump, err := os.ReadFile(filepath.Join(bdir, "directory.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CREATE TABLE public.domains", "pgdump.test"} {
		if !strings.Contains(string(dump), want) {
			t.Errorf("dump lacks %s", want)
		}
	}
}

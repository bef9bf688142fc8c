package managesieve

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Script names a client gives to GETSCRIPT, DELETESCRIPT, RENAMESCRIPT and
// SETACTIVE name nothing outside the user's own sieve/ directory: another
// user's script is neither read, deleted, taken nor activated.
func TestNamesStayInHome(t *testing.T) {
	e := newEnv(t, nil)
	aliceDir := filepath.Join(e.base, "example.org", "alice", "sieve")
	if err := os.MkdirAll(aliceDir, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(aliceDir, "secret.sieve")
	if err := os.WriteFile(secret, []byte("# alice's\r\nkeep;\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e.login()
	if r := last(c.cmd(put("mine", "keep;"))); r != "OK" {
		t.Fatalf("PUTSCRIPT: %s", r)
	}
	for _, name := range []string{"../../alice/sieve/secret", "../sieve/mine", "/etc/passwd", ".hidden", "a\x00b"} {
		lit := func(s string) string { return "{" + strconv.Itoa(len(s)) + "+}\r\n" + s }
		for _, cmd := range []string{
			"GETSCRIPT " + lit(name),
			"DELETESCRIPT " + lit(name),
			"SETACTIVE " + lit(name),
			"RENAMESCRIPT " + lit(name) + ` "stolen"`,
		} {
			r := c.cmd(cmd)
			if len(r) != 1 || !strings.HasPrefix(r[0], "NO") {
				t.Errorf("%q: %q", cmd, r)
			}
		}
		if r := last(c.cmd(`RENAMESCRIPT "mine" ` + lit(name))); r != `NO "Bad script name."` {
			t.Errorf("RENAMESCRIPT to %q: %s", name, r)
		}
	}
	if b, err := os.ReadFile(secret); err != nil || !strings.HasPrefix(string(b), "# alice's") {
		t.Fatalf("alice's script: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(e.home(), ".dovecot.sieve")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an active script was set: %v", err)
	}
	if r := c.cmd("LISTSCRIPTS"); strings.Join(r, "|") != `"mine"|OK` {
		t.Fatalf("LISTSCRIPTS: %q", r)
	}
}

// A command's literals and lines are bounded in all, before login more
// tightly than after, and the bound is met before the bytes are read:
// many literals each under the script size no longer add up.
func TestCommandBound(t *testing.T) {
	e := newEnv(t, nil)

	// Before login: one literal of 100 KiB, under the script size.
	c := e.dial()
	c.nc.SetReadDeadline(time.Now().Add(time.Minute)) // fail rather than hang
	c.reply()
	c.send("NOOP {102400+}\r\n")
	if r := c.reply(); strings.Join(r, "|") != `BYE "Command too long."` {
		t.Fatalf("100 KiB literal before login: %q", r)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("connection still open after BYE: %v", err)
	}

	// Before login: many small literals in one command.
	c = e.dial()
	c.reply()
	small := strings.Repeat("x", 1000)
	var b strings.Builder
	b.WriteString("NOOP")
	for range 20 {
		b.WriteString(" {1000+}\r\n" + small)
	}
	b.WriteString("\r\n")
	c.send(b.String())
	if r := c.reply(); strings.Join(r, "|") != `BYE "Command too long."` {
		t.Fatalf("20 literals of 1000 bytes before login: %q", r)
	}

	// After login: a script of the whole size still fits; two do not.
	e2 := newEnv(t, func(o *Options) { o.MaxScriptSize = 64 << 10; o.MaxStorage = 1 << 20 })
	c = e2.login()
	script := "keep;" + strings.Repeat("#", 64<<10-7) + "\r\n"
	if r := last(c.cmd(put("big", script))); r != "OK" {
		t.Fatalf("PUTSCRIPT of the largest script: %s", r)
	}
	c.send("PUTSCRIPT {64000+}\r\n" + strings.Repeat("a", 64000) + " {64000+}\r\n")
	if r := c.reply(); strings.Join(r, "|") != `BYE "Command too long."` {
		t.Fatalf("two literals of 64000 bytes: %q", r)
	}
	if names, _ := os.ReadDir(filepath.Join(e2.home(), "sieve")); len(names) != 1 {
		t.Fatalf("scripts stored: %v", names)
	}
}

// A response that breaks PLAIN's syntax is a failed login, counted.
func TestMalformedSASLCounted(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.reply()
	c.startTLS(e.client)
	for i, ir := range []string{"", "bm8gc2VwYXJhdG9ycw==", "YQBi"} {
		r := last(c.cmd(`AUTHENTICATE "PLAIN" "` + ir + `"`))
		if i < 2 && r != `NO "Authentication failed."` || i == 2 && !strings.HasPrefix(r, "BYE") {
			t.Fatalf("malformed response %d: %s", i+1, r)
		}
	}
}

// TestBadBase64Counted: a response that is not base64 is a failed login,
// counted like a wrong password.
func TestBadBase64Counted(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.reply()
	c.startTLS(e.client)
	for i, ir := range []string{"!!!", "***", "%%%"} {
		r := last(c.cmd(`AUTHENTICATE "PLAIN" "` + ir + `"`))
		if i < 2 && r != `NO "Authentication failed."` || i == 2 && !strings.HasPrefix(r, "BYE") {
			t.Fatalf("response %d not base64: %s", i+1, r)
		}
	}
}

// A string the server sends back that holds a line end (NOOP's tag, sent
// as a literal) goes out as a literal, so that it cannot end the response
// early and pass for a response of its own.
func TestRepliedStringsStayStrings(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.reply()
	tag := "a\r\nBYE \"forged\""
	c.send("NOOP {" + strconv.Itoa(len(tag)) + "+}\r\n" + tag + "\r\n")
	var got strings.Builder
	for !strings.HasSuffix(got.String(), "\"Done.\"\r\n") {
		l, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", got.String(), err)
		}
		got.WriteString(l)
	}
	if want := "OK (TAG {" + strconv.Itoa(len(tag)) + "}\r\n" + tag + ") \"Done.\"\r\n"; got.String() != want {
		t.Fatalf("NOOP reply %q, want %q", got.String(), want)
	}
	if r := last(c.cmd("CAPABILITY")); r != "OK" {
		t.Fatalf("after NOOP: %q", r)
	}
}

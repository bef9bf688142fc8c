package pop3

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// TestLockTwoSessions: while one session is in TRANSACTION a second
// login is refused with [IN-USE] and stays in AUTHORIZATION; QUIT and a
// dropped connection release the lock.
func TestLockTwoSessions(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("u@example.org", "pw")
	e.deliver(u, sizedMessage("a", 100))
	first := e.login("u@example.org", "pw")

	second := e.dial()
	second.cmd("USER u@example.org", "+OK")
	second.cmd("PASS pw", "-ERR [IN-USE] Mailbox is locked by another POP3 session.")
	second.cmd("STAT", "-ERR Not logged in.")
	first.cmd("QUIT", "+OK Logging out, 1 messages left.")
	second.cmd("USER u@example.org", "+OK")
	second.cmdPrefix("PASS pw", "+OK Logged in")

	third := e.dial()
	third.cmd("AUTH PLAIN AHVAZXhhbXBsZS5vcmcAcHc=", "-ERR [IN-USE] Mailbox is locked by another POP3 session.")
	second.nc.Close() // no QUIT
	e.waitUnlocked(u)
	third.cmd("AUTH PLAIN AHVAZXhhbXBsZS5vcmcAcHc=", "+OK Logged in, maildrop has 1 messages (100 octets).")
}

// TestKilledSessionDeletesNothing: a session that marks messages deleted
// and retrieves one, then loses its connection, deletes nothing; the
// message it retrieved gets \Seen, as Dovecot does.
func TestKilledSessionDeletesNothing(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("u@example.org", "pw")
	e.deliverSeq(u, sizedMessage("a", 100), sizedMessage("b", 100), sizedMessage("c", 100))
	c := e.login("u@example.org", "pw")
	c.cmd("DELE 1", "+OK Message 1 deleted.")
	c.cmd("DELE 2", "+OK Message 2 deleted.")
	c.cmd("RETR 3", "+OK 100 octets")
	c.multi()
	c.send("LIST") // in flight when the connection dies
	c.nc.Close()
	e.waitUnlocked(u)
	snap := e.snapshot(u)
	if len(snap.Messages) != 3 {
		t.Fatalf("%d messages left after a dropped session, want 3", len(snap.Messages))
	}
	for i, m := range snap.Messages {
		if seen := m.HasFlag(maildir.FlagSeen); seen != (i == 2) {
			t.Errorf("message %d: flags %v", i+1, m.Flags)
		}
	}
}

// childEnv names the variables that make the test binary a child
// holding a POP3 session (see TestMain).
const (
	childDB   = "POP3_TEST_CHILD_DB"
	childBase = "POP3_TEST_CHILD_BASE"
)

func TestMain(m *testing.M) {
	if os.Getenv(childDB) != "" {
		os.Exit(holdSession(os.Getenv(childDB), os.Getenv(childBase)))
	}
	os.Exit(m.Run())
}

// holdSession is the child process of TestLockAcrossProcesses: a server
// of its own on the same directory and Maildirs, and a session on it
// that logs in, marks message 1 deleted, says "HOLDING" on stdout and
// waits to be killed.
func holdSession(dbPath, base string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	ctx := context.Background()
	dir, err := store.Open(ctx, store.DriverSQLite, dbPath, nil)
	if err != nil {
		return fail(err)
	}
	ms, err := maildir.New(base, nil)
	if err != nil {
		return fail(err)
	}
	srv, err := NewServer(Options{Maildirs: ms, AllowInsecureAuth: true,
		Authenticator: &auth.Authenticator{Users: dir, Argon2: testArgon2}})
	if err != nil {
		return fail(err)
	}
	l, err := netListen()
	if err != nil {
		return fail(err)
	}
	go srv.Serve(l)
	nc, err := netDial(l.Addr().String())
	if err != nil {
		return fail(err)
	}
	r := bufio.NewReader(nc)
	for _, cmd := range []string{"", "USER u@example.org", "PASS pw", "DELE 1"} {
		if cmd != "" {
			fmt.Fprintf(nc, "%s\r\n", cmd)
		}
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "+OK") {
			return fail(fmt.Errorf("%q: %q %v", cmd, line, err))
		}
	}
	fmt.Println("HOLDING")
	io.Copy(io.Discard, os.Stdin) // until killed
	return 0
}

// TestLockAcrossProcesses: a session held by another process locks the
// maildrop; when that process is killed (kill -9, no QUIT, no cleanup)
// the kernel releases its lock, the user can log in again and the
// deletion it had marked was not applied.
func TestLockAcrossProcesses(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("u@example.org", "pw")
	e.deliver(u, sizedMessage("a", 100))

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childDB+"="+e.dbPath, childBase+"="+e.base)
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	defer child.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "HOLDING\n" {
		t.Fatalf("child said %q, %v", line, err)
	}

	c := e.dial()
	c.cmd("USER u@example.org", "+OK")
	c.cmd("PASS pw", "-ERR [IN-USE] Mailbox is locked by another POP3 session.")

	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	c.cmd("USER u@example.org", "+OK")
	c.cmd("PASS pw", "+OK Logged in, maildrop has 1 messages (100 octets).")
	if _, err := os.Stat(filepath.Join(e.base, u.Maildir, "mailagent-session.lock")); err != nil {
		t.Fatalf("no lock file: %v", err)
	}
}

package imap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/interop"
)

// TestInteropMbsyncUIDValidity: a folder deleted on the server and
// created again under the same name gets a new UIDVALIDITY; mbsync
// (isync 1.4) must notice it and lose nothing. After a full sync,
// "Projects.2026" is deleted and re-created with another message, and a
// flag changes in INBOX. The next sync refuses that one folder ("UIDVALIDITY
// genuinely changed"), keeps its two local messages untouched and still
// syncs INBOX's change. Once the folder's sync state is removed (what
// mbsync's manual asks of the user), a sync merges both sides: the two
// local messages go up, the new one comes down, and server and Maildirs
// end identical, every folder compared.
func TestInteropMbsyncUIDValidity(t *testing.T) {
	mbsync := interop.Program(t, "mbsync")
	t.Parallel()
	st, addr, proxy, local, conf := mbsyncFixture(t)
	run := func(what string) (string, error) {
		t.Helper()
		out, err := exec.Command(mbsync, "-c", conf, "-a").CombinedOutput()
		t.Logf("mbsync %s: %v, %s\n%s", what, err, proxy.Take(), out)
		return string(out), err
	}
	form := func(b string) string { return tuidLine.ReplaceAllString(lfLines(b), "") }
	check := func(what string) { checkSynced(t, what, addr, local, true, nil, true, form) }
	if out, err := run("full sync"); err != nil {
		t.Fatalf("full sync: %v\n%s", err, out)
	}
	check("after the full sync")
	nested := filepath.Join(local, "Projects", "2026")
	before := maildirState(t, map[string]string{"Projects.2026": nested}, nil)

	cl := dial(t, addr)
	cl.login("alice@local.example")
	old := modSeqOf(t, cl.ok(`STATUS "Projects.2026" (UIDVALIDITY)`), "UIDVALIDITY")
	cl.ok(`DELETE "Projects.2026"`)
	cl.ok(`CREATE "Projects.2026"`)
	if now := modSeqOf(t, cl.ok(`STATUS "Projects.2026" (UIDVALIDITY)`), "UIDVALIDITY"); now == old {
		t.Fatalf("re-created folder kept UIDVALIDITY %d", old)
	}
	st.deliver("alice@local.example", "Projects.2026", clientMessage(16, "recreated"))
	cl.ok("SELECT INBOX")
	cl.ok(`STORE 3 +FLAGS.SILENT (\Flagged)`)
	cl.ok("LOGOUT")

	out, err := run("sync after the re-creation")
	if err == nil || !strings.Contains(out, "UIDVALIDITY genuinely changed") {
		t.Fatalf("mbsync did not refuse the folder with a new UIDVALIDITY: %v\n%s", err, out)
	}
	diffState(t, "the refused folder's local messages", before, maildirState(t, map[string]string{"Projects.2026": nested}, nil))
	if got := flagsOf(t, maildirState(t, map[string]string{"INBOX": filepath.Join(local, "INBOX")}, nil)["INBOX"], "Message 3,"); got != `\Answered \Flagged` {
		t.Errorf("INBOX's change not synced beside the refused folder: local flags %q", got)
	}
	if srv := serverState(t, addr, "alice@local.example")["Projects.2026"]; len(srv) != 1 {
		t.Errorf("server's re-created folder after the refused sync: %q", srv)
	}

	must(t, os.Remove(filepath.Join(nested, ".mbsyncstate")))
	if out, err := run("sync after the state is removed"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	check("after the merge")
	if n := len(serverState(t, addr, "alice@local.example")["Projects.2026"]); n != 3 {
		t.Errorf("server's Projects.2026 holds %d messages after the merge, want the 2 old and the new one", n)
	}
}

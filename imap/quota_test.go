package imap

import (
	"fmt"
	"testing"
)

// TestQuota: GETQUOTAROOT and GETQUOTA report the user's maildirsize
// limits and usage (RFC 9208), STORAGE in KiB; a user without limits
// has no quota root; SETQUOTA is the administrator's; STATUS gives
// DELETED-STORAGE.
func TestQuota(t *testing.T) {
	st := newTestStack(t)
	st.deliver("small@local.example", "INBOX", testMessage)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("small@local.example")
	wantLine(t, cl.ok("CAPABILITY"), "QUOTA", "QUOTA=RES-STORAGE")
	lines := cl.ok("GETQUOTAROOT INBOX")
	wantLine(t, lines, `* QUOTAROOT INBOX ""`)
	wantLine(t, lines, `* QUOTA "" (STORAGE 1 1)`)
	wantLine(t, cl.ok(`GETQUOTA ""`), `* QUOTA "" (STORAGE 1 1)`)
	cl.expect("NO [NONEXISTENT]", `GETQUOTA "other"`)
	cl.expect("NO [NOPERM]", `SETQUOTA "" (STORAGE 10)`)
	cl.expect("NO [NONEXISTENT]", "GETQUOTAROOT Nowhere")
	cl.ok("SELECT INBOX")
	cl.ok(`STORE 1 +FLAGS (\Deleted)`)
	wantLine(t, cl.ok("STATUS INBOX (DELETED DELETED-STORAGE)"), fmt.Sprintf("* STATUS INBOX (DELETED 1 DELETED-STORAGE %d)", (len(testMessage)+1023)/1024))

	free := dial(t, addr)
	free.login("alice@local.example")
	if lines := free.ok("GETQUOTAROOT INBOX"); len(lines) != 1 || lines[0] != "* QUOTAROOT INBOX" {
		t.Fatalf("no limits: %q", lines)
	}
	free.expect("NO [NONEXISTENT]", `GETQUOTA ""`)
}

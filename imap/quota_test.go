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

// TestMultiAppend: MULTIAPPEND (RFC 3502) stores every message with
// its own flags and reports their UIDs; when one fails (over quota)
// none is kept.
func TestMultiAppend(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), "MULTIAPPEND")
	m := testMessage
	cl.send(fmt.Sprintf("a1 APPEND INBOX (\\Seen) {%d+}\r\n%s (\\Flagged) {%d+}\r\n%s", len(m), m, len(m), m))
	if _, reply := cl.until("a1"); !hasPrefixAndSuffix(reply, "OK [APPENDUID ", " 1:2] APPEND completed") {
		t.Fatalf("MULTIAPPEND: %q", reply)
	}
	cl.ok("SELECT INBOX")
	// Appended, so \Recent for the session that selects first.
	wantLine(t, cl.ok("FETCH 1 FLAGS"), `FLAGS (\Seen \Recent)`)
	wantLine(t, cl.ok("FETCH 2 FLAGS"), `FLAGS (\Flagged \Recent)`)

	small := dial(t, addr)
	small.login("small@local.example")
	big := "Subject: big\r\n\r\n" + fmt.Sprintf("%03000d", 0) + "\r\n"
	small.send(fmt.Sprintf("b1 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s", len(m), m, len(big), big))
	if _, reply := small.until("b1"); !hasPrefixAndSuffix(reply, "NO [OVERQUOTA]", "") {
		t.Fatalf("MULTIAPPEND over quota: %q", reply)
	}
	wantLine(t, small.ok("STATUS INBOX (MESSAGES)"), "MESSAGES 0")
}

func hasPrefixAndSuffix(s, prefix, suffix string) bool {
	return len(s) >= len(prefix)+len(suffix) && s[:len(prefix)] == prefix && s[len(s)-len(suffix):] == suffix
}

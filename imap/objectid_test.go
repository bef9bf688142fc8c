package imap

import (
	"regexp"
	"testing"
)

// TestObjectID: OBJECTID (RFC 8474): MAILBOXID at CREATE, SELECT and in
// STATUS, the same for one folder and kept through RENAME; EMAILID per
// message, kept by COPY's copy of the same message; THREADID NIL.
func TestObjectID(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), "OBJECTID")
	id := regexp.MustCompile(`MAILBOXID \(([A-Za-z0-9_-]+)\)`)
	_, reply := cl.cmd("CREATE Projects")
	m := id.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("CREATE: %q", reply)
	}
	created := m[1]
	wantLine(t, cl.ok("STATUS Projects (MESSAGES MAILBOXID)"), "* STATUS \"Projects\" (MESSAGES 0 MAILBOXID ("+created+"))")
	cl.ok("RENAME Projects Done")
	wantLine(t, cl.ok("SELECT Done"), "[MAILBOXID ("+created+")]")
	lines := cl.ok("SELECT INBOX")
	if m := id.FindStringSubmatch(lines[len(lines)-1] + " " + joinLines(lines)); m == nil || m[1] == created {
		t.Fatalf("INBOX's MAILBOXID: %q", lines)
	}
	lines = cl.ok("FETCH 1 (EMAILID THREADID)")
	em := regexp.MustCompile(`EMAILID \(([A-Za-z0-9_-]+)\) THREADID NIL`).FindStringSubmatch(joinLines(lines))
	if em == nil {
		t.Fatalf("FETCH EMAILID: %q", lines)
	}
	cl.ok("COPY 1 Done")
	cl.ok("SELECT Done")
	wantLine(t, cl.ok("FETCH 1 EMAILID"), "EMAILID ("+em[1]+")")
}

func joinLines(lines []string) string {
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}

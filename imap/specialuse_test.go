package imap

import (
	"strings"
	"testing"
)

// TestCreateSpecialUse: CREATE's USE parameter (RFC 6154 section 3)
// gives the new mailbox its special use, kept across sessions, renames
// and not past a DELETE; a use a folder cannot hold creates nothing.
func TestCreateSpecialUse(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), " CREATE-SPECIAL-USE ")
	list := func(cl *client, name string) string {
		t.Helper()
		lines := cl.ok(`LIST "" %s`, name)
		if len(lines) != 1 {
			return strings.Join(lines, "|")
		}
		return lines[0]
	}
	cl.ok(`CREATE MySent (USE (\Sent))`)
	cl.ok(`CREATE Old (USE (\archive))`)
	if l := list(cl, "MySent"); !strings.Contains(l, `\Sent`) {
		t.Fatalf("LIST MySent: %q", l)
	}
	wantLine(t, cl.ok(`LIST (SPECIAL-USE) "" *`), `\Archive`, "Old")
	for _, c := range []string{`CREATE All (USE (\All))`, `CREATE Two (USE (\Sent \Trash))`, `CREATE Bogus (USE (\Bogus))`, `CREATE Fl (USE (\Flagged))`} {
		cl.expect("NO [USEATTR]", "%s", c)
	}
	cl.expect("BAD", `CREATE Foo (FOO (\Sent))`)
	for _, n := range []string{"All", "Two", "Bogus", "Fl", "Foo"} {
		if l := list(cl, n); l != "" {
			t.Errorf("refused %s was created: %q", n, l)
		}
	}
	cl.ok("CREATE Old.Sub")
	cl.ok("RENAME Old Older")
	other := dial(t, addr)
	other.login("alice@local.example")
	if l := list(other, "Older"); !strings.Contains(l, `\Archive`) {
		t.Fatalf("after RENAME, in another session: %q", l)
	}
	if l := list(other, "Older.Sub"); strings.Contains(l, `\Archive`) {
		t.Fatalf("child took the use: %q", l)
	}
	other.ok("DELETE MySent")
	other.ok("CREATE MySent")
	if l := list(cl, "MySent"); strings.Contains(l, `\Sent`) {
		t.Fatalf("use outlived DELETE: %q", l)
	}
}

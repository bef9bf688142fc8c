package imap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUTF8NamesWithAmpersand: after ENABLE UTF8=ACCEPT (or IMAP4rev2) a
// name is UTF-8 and "&" is itself: a folder "Ärger & Co" is created,
// listed, selected and copied to under that name (neomutt's case), is
// stored under Dovecot's modified UTF-7 directory name, and a client
// without UTF8=ACCEPT sees it in modified UTF-7.
func TestUTF8NamesWithAmpersand(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	_, addr := st.serve(st.options())
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)

	for _, enable := range []string{"UTF8=ACCEPT", "IMAP4rev2"} {
		t.Run(enable, func(t *testing.T) {
			name := "Ärger & Co " + enable
			cl := dial(t, addr)
			cl.login("alice@local.example")
			cl.ok("ENABLE %s", enable)
			cl.ok(`CREATE "%s"`, name)
			wantLine(t, cl.ok(`LIST "" "Ärger*"`), `* LIST (`, `"`+name+`"`)
			cl.ok("SELECT INBOX")
			if _, reply := cl.cmd(`COPY 1 "%s"`, name); !strings.HasPrefix(reply, "OK [COPYUID") {
				t.Fatalf("COPY to %q: %q", name, reply)
			}
			wantLine(t, cl.ok(`STATUS "%s" (MESSAGES)`, name), `* STATUS "`+name+`" (MESSAGES 1)`)
			dir := filepath.Join(path, "."+strings.ReplaceAll(name, "Ärger & Co", "&AMQ-rger &- Co"))
			if _, err := os.Stat(filepath.Join(dir, "cur")); err != nil {
				t.Fatalf("folder directory: %v", err)
			}

			// The same folder for a client without UTF8=ACCEPT.
			old := dial(t, addr)
			old.login("alice@local.example")
			enc := strings.ReplaceAll(name, "Ärger & Co", "&AMQ-rger &- Co")
			wantLine(t, old.ok(`LIST "" "&AMQ-rger*"`), `"`+enc+`"`)
			old.ok(`SELECT "%s"`, enc)
			// UTF-8 is not modified UTF-7: "&" must start a run there, so
			// the name is none a mailbox has.
			old.expect("NO [CANNOT]", `SELECT "%s"`, "Ärger & Co")
		})
	}
}

// TestFlagListLeadingSpace: a flag list with a leading space, as
// Dovecot's own IMAP client sends when it migrates mail in (doveadm
// backup), is taken as Dovecot takes it, by STORE and APPEND.
func TestFlagListLeadingSpace(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	wantLine(t, cl.ok("STORE 1 FLAGS ( Project_X)"), `* 1 FETCH (FLAGS (Project_X \Recent))`)
	wantLine(t, cl.ok(`STORE 1 +FLAGS (\Seen  $Junk )`), `* 1 FETCH (FLAGS (`, `\Seen`, `$Junk`, `Project_X`)
	cl.send("a1 APPEND INBOX ( \\Flagged Project_X) {" + itoa(len(testMessage)) + "+}\r\n" + testMessage)
	if _, reply := cl.until("a1"); !strings.HasPrefix(reply, "OK [APPENDUID") {
		t.Fatalf("APPEND: %q", reply)
	}
	wantLine(t, cl.ok("FETCH 2 FLAGS"), `* 2 FETCH (FLAGS (\Flagged Project_X \Recent))`)
}

// TestID: ID (RFC 2971) before and after login: the server names
// itself; the client's parameters and NIL are taken.
func TestID(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	wantLine(t, cl.ok("CAPABILITY"), " ID ")
	wantLine(t, cl.ok(`ID ("name" "neomutt" "version" "20240425")`), `* ID ("name" "mailagent")`)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("ID NIL"), `* ID ("name" "mailagent")`)
	cl.expect("BAD", `ID ("name")`)
}

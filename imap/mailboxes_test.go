package imap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testMessage = "From: Alice <alice@local.example>\r\n" +
	"To: Bob <bob@local.example>\r\n" +
	"Subject: Hello there\r\n" +
	"Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n" +
	"Message-ID: <m1@local.example>\r\n" +
	"\r\n" +
	"First line of the body.\r\n"

func TestCreateDeleteRename(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")

	cl.ok("CREATE Projects")
	cl.ok("CREATE Projects.Alpha")
	cl.ok(`CREATE "Projects.Beta."`) // trailing delimiter is dropped
	cl.expect("NO [ALREADYEXISTS]", "CREATE Projects")
	cl.expect("NO [ALREADYEXISTS]", "CREATE inbox")
	cl.ok("CREATE Entw&APw-rfe")
	wantLine(t, cl.ok(`LIST "" "Entw*"`), `"Entw&APw-rfe"`)
	if _, err := os.Stat(filepath.Join(st.dir, "mail/local.example/alice/Maildir/.Projects.Beta")); err != nil {
		t.Fatal(err)
	}

	// APPEND into a child, then RENAME moves the hierarchy.
	cl.ok("APPEND Projects.Alpha {%d}\r\n%s", len(testMessage), testMessage)
	cl.ok("RENAME Projects Work")
	lines := cl.ok(`LIST "" "*"`)
	wantLine(t, lines, `"Work.Alpha"`)
	wantLine(t, lines, `"Work.Beta"`)
	if has(lines, "Projects") {
		t.Fatalf("old names still listed: %q", lines)
	}
	wantLine(t, cl.ok("STATUS Work.Alpha (MESSAGES)"), "MESSAGES 1")
	cl.expect("NO [NONEXISTENT]", "RENAME Nothing Else")
	cl.expect("NO [ALREADYEXISTS]", "RENAME Work.Alpha Work.Beta")

	// DELETE keeps the children.
	cl.ok("DELETE Work")
	lines = cl.ok(`LIST "" "*"`)
	wantLine(t, lines, `"Work.Alpha"`)
	wantLine(t, lines, `\Noselect`, `"Work"`)
	cl.expect("NO", "DELETE INBOX")
	cl.expect("NO [NONEXISTENT]", "DELETE Nothing")
	cl.expect("NO [NONEXISTENT]", "SELECT Nothing")
}

func TestRenameInbox(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	st.deliver("alice@local.example", "INBOX", testMessage)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("RENAME INBOX Old")
	wantLine(t, cl.ok("STATUS Old (MESSAGES)"), "MESSAGES 2")
	wantLine(t, cl.ok("STATUS INBOX (MESSAGES)"), "MESSAGES 0")
	cl.expect("NO [ALREADYEXISTS]", "RENAME Old INBOX")
}

func TestBadNames(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	for _, name := range []string{`"../bob"`, `"a/b"`, `"~root"`, `"a..b"`, `".hidden"`} {
		cl.expect("NO [CANNOT]", "CREATE %s", name)
		cl.expect("NO", "SELECT %s", name)
		cl.expect("NO [CANNOT]", "RENAME INBOX %s", name)
	}
	// Invalid modified UTF-7 is refused before it reaches the store.
	lines, st2 := cl.cmd("CREATE &Jjo")
	if !strings.HasPrefix(st2, "NO") && !strings.HasPrefix(st2, "BAD") {
		t.Fatalf("invalid UTF-7: %s %q", st2, lines)
	}
	entries, err := os.ReadDir(filepath.Join(st.dir, "mail/local.example/alice/Maildir"))
	must(t, err)
	for _, e := range entries {
		if strings.Contains(e.Name(), "bob") || strings.Contains(e.Name(), "root") {
			t.Fatalf("escaping name created %q", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(st.dir, "mail/local.example/bob")); err == nil {
		t.Fatal("created a directory in bob's tree")
	}
}

func TestSubscribeListLsub(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("CREATE Lists")
	cl.ok("CREATE Lists.go")
	cl.ok("SUBSCRIBE Lists.go")
	cl.ok("SUBSCRIBE Gone") // need not exist

	lines := cl.ok(`LSUB "" "*"`)
	wantLine(t, lines, `* LSUB`, `"Lists.go"`)
	wantLine(t, lines, `* LSUB`, `Gone`)

	lines = cl.ok(`LIST (SUBSCRIBED) "" "*"`)
	wantLine(t, lines, `\Subscribed`, `"Lists.go"`)
	wantLine(t, lines, `\NonExistent`, `Gone`)
	if has(lines, `"Lists"`) && !has(lines, `CHILDINFO`) {
		t.Fatalf("unsubscribed Lists listed: %q", lines)
	}
	lines = cl.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "%%"`)
	wantLine(t, lines, `Lists`, `CHILDINFO`)

	cl.ok("UNSUBSCRIBE Lists.go")
	if has(cl.ok(`LSUB "" "*"`), "Lists.go") {
		t.Fatal("still subscribed")
	}

	// Hierarchy delimiter, % and children attributes.
	wantLine(t, cl.ok(`LIST "" ""`), `\Noselect`, `"."`)
	lines = cl.ok(`LIST "" "%%"`)
	wantLine(t, lines, `\HasChildren`, `Lists`)
	if has(lines, "Lists.go") {
		t.Fatalf("%% matched a child: %q", lines)
	}
	wantLine(t, cl.ok(`LIST "Lists." "%%"`), `\HasNoChildren`, `"Lists.go"`)

	// SPECIAL-USE (the default folders) and LIST-STATUS.
	lines = cl.ok(`LIST (SPECIAL-USE) "" "*"`)
	wantLine(t, lines, `\Sent`, `Sent`)
	wantLine(t, lines, `\Trash`, `Trash`)
	if has(lines, "Lists") {
		t.Fatalf("SPECIAL-USE selection listed Lists: %q", lines)
	}
	st.deliver("alice@local.example", "INBOX", testMessage)
	lines = cl.ok(`LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN SIZE))`)
	wantLine(t, lines, `* STATUS INBOX`, "MESSAGES 1", "UNSEEN 1", fmt.Sprintf("SIZE %d", len(testMessage)))
	wantLine(t, cl.ok(`NAMESPACE`), `* NAMESPACE (("" "."))`)
}

func TestStatusAppend(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	caps := cl.ok("CAPABILITY")
	wantLine(t, caps, "APPENDLIMIT=52428800", "UIDPLUS", "MOVE", "SPECIAL-USE", "LIST-STATUS", "STATUS=SIZE")

	_, tagged := cl.cmd(`APPEND INBOX (\Flagged $Work) "14-Jul-2025 02:44:25 +0200" {%d}`+"\r\n%s", len(testMessage), testMessage)
	if !strings.HasPrefix(tagged, "OK [APPENDUID ") || !strings.Contains(tagged, " 1]") {
		t.Fatalf("APPEND: %q", tagged)
	}
	lines := cl.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT)")
	wantLine(t, lines, "MESSAGES 1", "UIDNEXT 2", "UNSEEN 1", "DELETED 0", fmt.Sprintf("SIZE %d", len(testMessage)))

	cl.ok("SELECT INBOX")
	lines = cl.ok("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
	wantLine(t, lines, `\Flagged`, `$Work`, `"14-Jul-2025 00:44:25 +0000"`, fmt.Sprintf("RFC822.SIZE %d", len(testMessage)))

	cl.expect("NO [TRYCREATE]", "APPEND Missing {%d}\r\n%s", len(testMessage), testMessage)
	// A literal over APPENDLIMIT is refused before any byte is read.
	cl.expect("NO [TOOBIG]", "APPEND INBOX {4294967295}")
	cl.ok("NOOP")
	// Over quota.
	cl2 := dial(t, addr)
	cl2.login("small@local.example")
	big := strings.Repeat("x", 3000)
	cl2.expect("NO [OVERQUOTA]", "APPEND INBOX {%d}\r\n%s", len(big), big)
	cl2.ok("NOOP")
}

package imap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/interop"
)

// prefixedStack is alice's Maildir as the seed's Dovecot left it (INBOX,
// .Sent, .Archive.2024, one message each), served with NamespacePrefix
// "INBOX.".
func prefixedStack(t *testing.T) (*testStack, string, string) {
	t.Helper()
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	st.deliver("alice@local.example", "Sent", testMessage, `\Seen`)
	st.deliver("alice@local.example", "Archive.2024", testMessage, `\Seen`)
	opts := st.options()
	opts.NamespacePrefix = "INBOX."
	_, addr := st.serve(opts)
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)
	return st, addr, path
}

// noLine fails when a line contains all of subs.
func noLine(t *testing.T, lines []string, subs ...string) {
	t.Helper()
	if has(lines, subs...) {
		t.Fatalf("a line with %q in %q", subs, lines)
	}
}

func TestNamespacePrefixNames(t *testing.T) {
	t.Parallel()
	_, addr, path := prefixedStack(t)
	cl := dial(t, addr)
	cl.login("alice@local.example")

	wantLine(t, cl.ok("NAMESPACE"), `* NAMESPACE (("INBOX." ".")) NIL NIL`)

	all := cl.ok(`LIST "" "*"`)
	wantLine(t, all, `(\HasChildren) "." INBOX`)
	wantLine(t, all, `"." "INBOX.Sent"`)
	wantLine(t, all, `"." "INBOX.Archive"`)
	wantLine(t, all, `"." "INBOX.Archive.2024"`)
	for _, l := range all {
		if !strings.HasSuffix(l, `"." INBOX`) && !strings.Contains(l, `"." "INBOX.`) {
			t.Fatalf("LIST * gave a name outside the namespace: %q", l)
		}
	}
	top := cl.ok(`LIST "" "%%"`)
	if len(top) != 1 || !strings.HasSuffix(top[0], `"." INBOX`) {
		t.Fatalf(`LIST "" "%%" gave %q, want INBOX alone`, top)
	}
	level := cl.ok(`LIST "" "INBOX.%%"`)
	wantLine(t, level, `"INBOX.Sent"`)
	wantLine(t, level, `"INBOX.Archive"`)
	noLine(t, level, `"INBOX.Archive.2024"`)
	wantLine(t, cl.ok(`LIST "INBOX." "Arch*" RETURN (STATUS (MESSAGES))`), `* STATUS "INBOX.Archive.2024" (MESSAGES 1)`)

	wantLine(t, cl.ok("STATUS INBOX.Archive.2024 (MESSAGES)"), `* STATUS "INBOX.Archive.2024" (MESSAGES 1)`)
	wantLine(t, cl.ok("STATUS INBOX (MESSAGES)"), `* STATUS INBOX (MESSAGES 1)`)
	cl.expect("NO [NONEXISTENT]", "STATUS Sent (MESSAGES)")
	cl.expect("NO [NONEXISTENT]", "SELECT Sent")
	cl.expect("NO [NONEXISTENT]", "SELECT INBOX.INBOX")

	// CREATE and RENAME: the Maildir's folder is the name without the
	// prefix; a name outside the namespace cannot be created.
	cl.ok("CREATE INBOX.Work")
	if _, err := os.Stat(filepath.Join(path, ".Work", "cur")); err != nil {
		t.Fatalf("CREATE INBOX.Work: %v", err)
	}
	cl.expect("NO [CANNOT]", "CREATE Work")
	if _, err := os.Stat(filepath.Join(path, ".INBOX.Work")); err == nil {
		t.Fatal("CREATE made a folder named with the prefix")
	}
	cl.ok("RENAME INBOX.Work INBOX.Projects")
	if _, err := os.Stat(filepath.Join(path, ".Projects", "cur")); err != nil {
		t.Fatalf("RENAME to INBOX.Projects: %v", err)
	}
	cl.expect("NO [CANNOT]", "RENAME INBOX.Projects Projects")
	cl.expect("NO [NONEXISTENT]", "RENAME Projects INBOX.Other")

	// APPEND lands in the Maildir's folder.
	msg := strings.Replace(testMessage, "Hello there", "Appended", 1)
	cl.ok("APPEND INBOX.Projects {%d+}\r\n%s", len(msg), msg)
	if !dirHolds(t, filepath.Join(path, ".Projects"), "Appended") {
		t.Fatal("APPEND INBOX.Projects: message not in .Projects")
	}
	cl.expect("NO [NONEXISTENT]", "APPEND Projects {%d+}\r\n%s", len(msg), msg)

	// SELECT, COPY and MOVE by the prefixed names.
	wantLine(t, cl.ok("SELECT INBOX.Sent"), "* 1 EXISTS")
	cl.ok("COPY 1 INBOX.Projects")
	cl.expect("NO [NONEXISTENT]", "COPY 1 Projects")
	cl.ok("MOVE 1 INBOX.Archive.2024")
	wantLine(t, cl.ok("STATUS INBOX.Projects (MESSAGES)"), `(MESSAGES 2)`)
	wantLine(t, cl.ok("STATUS INBOX.Archive.2024 (MESSAGES)"), `(MESSAGES 2)`)
	if n := countFiles(t, filepath.Join(path, ".Archive.2024")); n != 2 {
		t.Fatalf(".Archive.2024 holds %d messages after MOVE", n)
	}
	cl.ok("UNSELECT")
	wantLine(t, cl.ok("STATUS INBOX.Sent (MESSAGES)"), `(MESSAGES 0)`)

	// LSUB and GETQUOTAROOT send the prefixed names back.
	cl.ok("SUBSCRIBE INBOX.Projects")
	wantLine(t, cl.ok(`LSUB "" "*"`), `* LSUB (`, `"." "INBOX.Projects"`)
	subs, err := os.ReadFile(filepath.Join(path, "subscriptions"))
	must(t, err)
	if !strings.Contains("\n"+string(subs), "\nProjects\n") || strings.Contains(string(subs), "INBOX.Projects") {
		t.Fatalf("subscriptions file holds %q, want the Maildir's name Projects", subs)
	}
	wantLine(t, cl.ok("GETQUOTAROOT INBOX.Projects"), `* QUOTAROOT "INBOX.Projects"`)
}

// dirHolds reports whether a message file under a Maildir folder's new/
// or cur/ contains s.
func dirHolds(t *testing.T, folder, s string) bool {
	t.Helper()
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(folder, sub))
		must(t, err)
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(folder, sub, e.Name()))
			must(t, err)
			if strings.Contains(string(b), s) {
				return true
			}
		}
	}
	return false
}

// TestNamespacePrefixNoPrefix keeps the Maildir's names when no prefix is
// set.
func TestNamespacePrefixNoPrefix(t *testing.T) {
	t.Parallel()
	st := newTestStack(t)
	st.deliver("alice@local.example", "Sent", testMessage)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("NAMESPACE"), `* NAMESPACE (("" ".")) NIL NIL`)
	wantLine(t, cl.ok(`LIST "" "*"`), `"." "Sent"`)
	cl.ok("SELECT Sent")
}

// TestInteropMbsyncNamespacePrefix syncs with an mbsync configuration
// written for the seed's Dovecot (namespace prefix "INBOX.", delimiter
// "."): a full sync pulls INBOX, INBOX.Sent and INBOX.Archive.2024 (mbsync
// takes the store's path, "INBOX.", from NAMESPACE, as it does with
// Dovecot, so they land in Sent and Archive/2024), an incremental one
// brings a new server message down and a new local one up into the
// Maildir's .Sent.
func TestInteropMbsyncNamespacePrefix(t *testing.T) {
	t.Parallel()
	mbsync := interop.Program(t, "mbsync")
	st, addr, path := prefixedStack(t)
	host, port, _ := strings.Cut(addr, ":")
	local := filepath.Join(t.TempDir(), "local")
	inbox := filepath.Join(t.TempDir(), "inbox")
	must(t, os.MkdirAll(local, 0o700))
	conf := filepath.Join(t.TempDir(), "mbsyncrc")
	must(t, os.WriteFile(conf, []byte(`IMAPAccount seed
Host `+host+`
Port `+port+`
User alice@local.example
Pass "`+testPassword+`"
SSLType STARTTLS
CertificateFile `+st.certFile+`

IMAPStore remote
Account seed
PathDelimiter .

MaildirStore local
Path `+local+`/
Inbox `+inbox+`
SubFolders Verbatim

Channel seed
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
`), 0o600))
	run := func(what string) {
		t.Helper()
		out, err := exec.Command(mbsync, "-c", conf, "-a").CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync (%s): %v\n%s", what, err, tail(out))
		}
	}
	run("full sync")
	for dir, want := range map[string]int{
		inbox:                                   1,
		filepath.Join(local, "Sent"):            1,
		filepath.Join(local, "Archive", "2024"): 1,
	} {
		if n := countFiles(t, dir); n != want {
			t.Fatalf("full sync: %s holds %d messages, want %d", dir, n, want)
		}
	}

	st.deliver("alice@local.example", "Archive.2024", strings.Replace(testMessage, "Hello there", "Second", 1))
	must(t, os.WriteFile(filepath.Join(local, "Sent", "new", "1700000000.local1.host"),
		[]byte(strings.Replace(testMessage, "Hello there", "Sent locally", 1)), 0o600))
	run("incremental sync")
	if n := countFiles(t, filepath.Join(local, "Archive", "2024")); n != 2 {
		t.Fatalf("incremental sync: INBOX.Archive.2024 holds %d messages locally", n)
	}
	if !dirHolds(t, filepath.Join(path, ".Sent"), "Sent locally") {
		t.Fatal("incremental sync: the local message is not in the Maildir's .Sent")
	}
	if _, err := os.Stat(filepath.Join(path, ".INBOX.Sent")); err == nil {
		t.Fatal("mbsync created .INBOX.Sent on the server")
	}
}

// TestNamespacePrefixNotify: NOTIFY takes the prefixed names and sends
// them back in its STATUS and LIST responses.
func TestNamespacePrefixNotify(t *testing.T) {
	t.Parallel()
	_, addr, _ := prefixedStack(t)
	c1 := dial(t, addr)
	c1.login("alice@local.example")
	wantLine(t, c1.ok("NOTIFY SET STATUS (mailboxes INBOX.Archive.2024 (MessageNew MessageExpunge)) (personal (MailboxName))"),
		`* STATUS "INBOX.Archive.2024" (MESSAGES 1 `)
	c2 := dial(t, addr)
	c2.login("alice@local.example")
	c2.ok("CREATE INBOX.Projects")
	c1.waitLine(`* LIST () "." "INBOX.Projects"`)
	c2.ok("RENAME INBOX.Projects INBOX.Older")
	c1.waitLine(`* LIST () "." "INBOX.Older" ("OLDNAME" ("INBOX.Projects"))`)
	c1.expect("NO [NONEXISTENT]", "NOTIFY SET (mailboxes Sent (MessageNew MessageExpunge))")
}

func TestCheckNamespacePrefix(t *testing.T) {
	opts := newTestStack(t).options()
	for _, p := range []string{"", "INBOX.", "Mail.Folders."} {
		if err := CheckNamespacePrefix(p); err != nil {
			t.Errorf("%q refused: %v", p, err)
		}
		opts.NamespacePrefix = p
		srv, err := NewServer(opts)
		if err != nil {
			t.Fatalf("NewServer refused NamespacePrefix %q: %v", p, err)
		}
		srv.Close()
	}
	for _, p := range []string{"INBOX", ".", ".INBOX.", "A..B.", "IN*.", "a\"b."} {
		if err := CheckNamespacePrefix(p); err == nil {
			t.Errorf("%q accepted", p)
		}
		opts.NamespacePrefix = p
		if _, err := NewServer(opts); err == nil {
			t.Errorf("NewServer accepted NamespacePrefix %q", p)
		}
	}
}

// TestNamespacePrefixNotifySubtree: with the prefix "INBOX.", NOTIFY's
// SUBTREE INBOX covers INBOX and every prefixed folder below it
// (INBOX.Sent, INBOX.Archive.2024, one created later), for message
// events and MailboxName; SUBTREE INBOX.Archive only that branch.
func TestNamespacePrefixNotifySubtree(t *testing.T) {
	t.Parallel()
	st, addr, _ := prefixedStack(t)
	c1 := dial(t, addr)
	c1.login("alice@local.example")
	lines := c1.ok("NOTIFY SET STATUS (subtree inbox (MessageNew MessageExpunge MailboxName))")
	wantLine(t, lines, `* STATUS INBOX (MESSAGES 1 `)
	wantLine(t, lines, `* STATUS "INBOX.Sent" (MESSAGES 1 `)
	wantLine(t, lines, `* STATUS "INBOX.Archive.2024" (MESSAGES 1 `)
	st.deliver("alice@local.example", "Archive.2024", testMessage)
	c1.waitLine(`* STATUS "INBOX.Archive.2024" (MESSAGES 2 `)
	c2 := dial(t, addr)
	c2.login("alice@local.example")
	c2.ok("CREATE INBOX.Projects.2025")
	c1.waitLine(`* LIST () "." "INBOX.Projects.2025"`)
	st.deliver("alice@local.example", "Projects.2025", testMessage)
	c1.waitLine(`* STATUS "INBOX.Projects.2025" (MESSAGES 1 `)

	lines = c1.ok("NOTIFY SET STATUS (subtree INBOX.Archive (MessageNew MessageExpunge MailboxName))")
	wantLine(t, lines, `* STATUS "INBOX.Archive.2024" (MESSAGES 2 `)
	noLine(t, lines, `"INBOX.Sent"`)
	noLine(t, lines, `STATUS INBOX `)
	c2.ok("CREATE INBOX.Other")
	c2.ok("CREATE INBOX.Archive.2025")
	if l := c1.waitLine(`* LIST `); !strings.Contains(l, `"INBOX.Archive.2025"`) {
		t.Fatalf("LIST outside the subtree: %q", l)
	}
}

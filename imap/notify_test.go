package imap

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/maildir"
)

// waitLine reads unsolicited lines until one contains all of subs,
// failing after 10 s (cl.line's limit).
func (cl *client) waitLine(subs ...string) string {
	cl.t.Helper()
	for {
		l := cl.line()
		if has([]string{l}, subs...) {
			return l
		}
	}
}

// TestNotifyStatus: with NOTIFY on personal mailboxes, a delivery into
// another folder reaches a session that sends nothing as an untagged
// STATUS, whether it comes from this process (LMTP, another session's
// APPEND) or another one (a second maildir.Store on the same Maildir,
// seen by its change notification); (STATUS) reports every watched
// mailbox at once; the selected mailbox gets no STATUS.
func TestNotifyStatus(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	st.deliver("alice@local.example", "INBOX", testMessage)
	c1 := dial(t, addr)
	c1.login("alice@local.example")
	wantLine(t, c1.ok("CAPABILITY"), " NOTIFY")
	c1.ok("CREATE Work")
	c1.ok("SELECT INBOX")
	lines := c1.ok("NOTIFY SET (STATUS) (selected (MessageNew (UID) MessageExpunge)) (personal (MessageNew MessageExpunge FlagChange))")
	wantLine(t, lines, `* STATUS "Work" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY `, `UNSEEN 0)`)
	if has(lines, "STATUS \"INBOX\"") {
		t.Fatalf("STATUS of the selected mailbox: %q", lines)
	}

	// Delivered in this process, while c1 waits for nothing.
	st.deliver("alice@local.example", "Work", testMessage)
	l := c1.waitLine("* STATUS \"Work\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ")
	if !strings.Contains(l, "UNSEEN 1") {
		t.Fatalf("got %q", l)
	}

	// Another session's APPEND.
	c2 := dial(t, addr)
	c2.login("alice@local.example")
	c2.ok("APPEND Work (\\Seen) {%d+}\r\n%s", len(testMessage), testMessage)
	c1.waitLine("* STATUS \"Work\" (MESSAGES 2 UIDNEXT 3 ")

	// A flag change in the other mailbox: UNSEEN drops.
	c2.ok("SELECT Work")
	c2.ok("STORE 1 +FLAGS (\\Seen)")
	c1.waitLine("* STATUS \"Work\" (MESSAGES 2 UIDNEXT 3 ", "UNSEEN 0)")

	// Another process: its own Store on the same files.
	local, err := maildir.New(filepath.Join(st.dir, "mail"), &maildir.Options{Hostname: "other", PollInterval: 100 * time.Millisecond})
	must(t, err)
	defer local.Close()
	path, err := local.UserPath("local.example", "alice")
	must(t, err)
	_, err = local.Deliver(context.Background(), path, "Work", strings.NewReader(testMessage), &maildir.DeliverOptions{})
	must(t, err)
	c1.waitLine("* STATUS \"Work\" (MESSAGES 3 UIDNEXT 4 ")

	// The selected mailbox: EXISTS, then MessageNew's FETCH items.
	st.deliver("alice@local.example", "INBOX", testMessage)
	c1.waitLine("* 2 EXISTS")
	c1.waitLine("* 2 FETCH (UID 2)")

	// Expunged elsewhere.
	c2.ok("STORE 1 +FLAGS (\\Deleted)")
	c2.ok("EXPUNGE")
	c1.waitLine("* STATUS \"Work\" (MESSAGES 2 UIDNEXT 4 ")

	// NONE: no more news between commands; the next command still
	// gets the selected mailbox's.
	c1.ok("NOTIFY NONE")
	st.deliver("alice@local.example", "Work", testMessage)
	st.deliver("alice@local.example", "INBOX", testMessage)
	lines = c1.ok("NOOP")
	if has(lines, "STATUS") {
		t.Fatalf("STATUS after NOTIFY NONE: %q", lines)
	}
}

// TestNotifyIdle: during IDLE, news of another mailbox comes as STATUS.
func TestNotifyIdle(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	c1 := dial(t, addr)
	c1.login("alice@local.example")
	c1.ok("CREATE Lists")
	c1.ok("NOTIFY SET (mailboxes Lists (MessageNew MessageExpunge))")
	c1.send("i IDLE")
	if l := c1.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("got %q", l)
	}
	st.deliver("alice@local.example", "Lists", testMessage)
	c1.waitLine("* STATUS \"Lists\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ")
	c1.send("DONE")
	c1.until("i")
}

// TestNotifyMailboxName: another session's CREATE, RENAME, SUBSCRIBE
// and DELETE come as LIST responses (RFC 5465 section 5.4, 5.5).
func TestNotifyMailboxName(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	c1 := dial(t, addr)
	c1.login("alice@local.example")
	c1.ok("NOTIFY SET (personal (MailboxName SubscriptionChange))")
	c2 := dial(t, addr)
	c2.login("alice@local.example")
	c2.ok("CREATE Projects")
	c1.waitLine(`* LIST () "." "Projects"`)
	c2.ok("RENAME Projects Older")
	c1.waitLine(`* LIST () "." "Older" ("OLDNAME" ("Projects"))`)
	c2.ok("SUBSCRIBE Older")
	c1.waitLine(`* LIST (\Subscribed) "." "Older"`)
	c2.ok("DELETE Older")
	c1.waitLine(`* LIST (\NonExistent) "." "Older"`)
	// Its own changes are not echoed; bob's are not alice's.
	c3 := dial(t, addr)
	c3.login("bob@local.example")
	c3.ok("CREATE Bobs")
	lines := c1.ok("CREATE Mine")
	if has(lines, "LIST") {
		t.Fatalf("got %q", lines)
	}
}

// TestNotifyRefusals: the events the server lacks are NO [BADEVENT]
// with those it has; the RFC's rules on events are BAD; the number of
// mailboxes watched is bounded.
func TestNotifyRefusals(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.expect("BAD", "NOTIFY NONE")
	cl.login("alice@local.example")
	for _, c := range []struct{ args, want string }{
		{"SET (selected (MessageNew MessageExpunge AnnotationChange))", "NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]"},
		{"SET (personal (MailboxMetadataChange))", "NO [BADEVENT ("},
		{"SET (personal (ServerMetadataChange))", "NO [BADEVENT ("},
		{"SET (personal (SomethingElse))", "NO [BADEVENT ("},
		{"SET (selected (MessageNew))", "BAD"},
		{"SET (selected (MessageExpunge FlagChange))", "BAD"},
		{"SET (personal (FlagChange))", "BAD"},
		{"SET (personal (MessageNew (UID) MessageExpunge))", "BAD"},
		{"SET (everything (MessageNew MessageExpunge))", "BAD"},
		{"SET (personal ())", "BAD"},
		{"SET (subtree (MessageNew MessageExpunge))", "BAD"},
		{"SET", "BAD"},
		{"FOO", "BAD"},
		{"SET (personal NONE) (selected-delayed NONE)", "OK"},
		{"SET (subtree (INBOX Lists) (MessageNew MessageExpunge)) (mailboxes Nowhere (MessageNew MessageExpunge))", "OK"},
		{"NONE", "OK"},
	} {
		cl.expect(c.want, "NOTIFY %s", c.args)
	}
	old := maxNotifyMailboxes
	maxNotifyMailboxes = 2
	defer func() { maxNotifyMailboxes = old }()
	cl.ok("CREATE A")
	cl.ok("CREATE B")
	cl.expect("NO [LIMIT]", "NOTIFY SET (personal (MessageNew MessageExpunge))")
	cl.ok("NOTIFY SET (mailboxes (A B) (MessageNew MessageExpunge))")
}

// TestNotifyCondStore: with CONDSTORE on, FlagChange's STATUS carries
// HIGHESTMODSEQ rather than UNSEEN, and only FlagChange's does (as
// imaptest's notify script expects of Dovecot).
func TestNotifyCondStore(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("ENABLE CONDSTORE")
	cl.ok("CREATE Box2")
	cl.ok("APPEND Box2 {%d+}\r\n%s", len(testMessage), testMessage)
	lines := cl.ok("NOTIFY SET (STATUS) (mailboxes Box2 (MessageNew MessageExpunge))")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `* STATUS "Box2" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY `) || strings.Contains(lines[0], "MODSEQ") {
		t.Fatalf("got %q", lines)
	}
	lines = cl.ok("NOTIFY SET (STATUS) (mailboxes Box2 (MessageNew MessageExpunge FlagChange))")
	if len(lines) != 1 || !strings.Contains(lines[0], " HIGHESTMODSEQ ") || strings.Contains(lines[0], "UNSEEN") {
		t.Fatalf("got %q", lines)
	}
	if lines := cl.ok("NOTIFY SET (mailboxes Box2 (MessageNew MessageExpunge FlagChange))"); len(lines) != 0 {
		t.Fatalf("got %q", lines)
	}
}

// TestNotifyNewMailbox: a mailbox created after NOTIFY SET, by the
// session itself or another, is watched when a filter with message
// events covers it (personal, subtree, mailboxes by name), and not
// otherwise.
func TestNotifyNewMailbox(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	c1 := dial(t, addr)
	c1.login("alice@local.example")
	c1.ok("CREATE Lists")
	c1.ok("NOTIFY SET (subtree Lists (MessageNew MessageExpunge)) (mailboxes Later (MessageNew MessageExpunge FlagChange))")
	c1.ok("CREATE Lists.go")
	c2 := dial(t, addr)
	c2.login("alice@local.example")
	c2.ok("CREATE Later")
	c2.ok("CREATE Elsewhere")
	st.deliver("alice@local.example", "Elsewhere", testMessage)
	st.deliver("alice@local.example", "Lists.go", testMessage)
	l := c1.waitLine("* STATUS ")
	if !strings.HasPrefix(l, `* STATUS "Lists.go" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY `) {
		t.Fatalf("got %q", l)
	}
	st.deliver("alice@local.example", "Later", testMessage)
	l = c1.waitLine("* STATUS ")
	if !strings.HasPrefix(l, `* STATUS "Later" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY `) || !strings.Contains(l, "UNSEEN 1") {
		t.Fatalf("got %q", l)
	}
}

// TestNotifyPolled: with the file-system watcher off (maildir's
// NoWatcher, as on NFS), another process's delivery still reaches a
// NOTIFY session, found by the poll.
func TestNotifyPolled(t *testing.T) {
	st := newTestStack(t)
	polled, err := maildir.New(filepath.Join(st.dir, "mail"), &maildir.Options{Hostname: "test", NoWatcher: true, PollInterval: 100 * time.Millisecond})
	must(t, err)
	defer polled.Close()
	opts := st.options()
	opts.Store = polled
	_, addr := st.serve(opts)
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("CREATE Feeds")
	cl.ok("NOTIFY SET (mailboxes Feeds (MessageNew MessageExpunge))")
	// st.maildirs is another Store on the same files: another process.
	st.deliver("alice@local.example", "Feeds", testMessage)
	cl.waitLine(`* STATUS "Feeds" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY `)
}

// TestNotifyOutsideChanges: folders created and deleted, and
// subscriptions changed, outside this server (mkdir and rm in the
// Maildir, another process's Store) reach a NOTIFY session as LIST
// responses, without a new NOTIFY SET, and a folder created outside is
// watched for message events at once. A change made by this server's
// own sessions is told once, not again by the watch.
func TestNotifyOutsideChanges(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)
	c1 := dial(t, addr)
	c1.login("alice@local.example")
	c1.ok("NOTIFY SET (personal (MessageNew MessageExpunge MailboxName SubscriptionChange))")

	// A folder made with mkdir behind the server's back.
	for _, sub := range []string{"cur", "new", "tmp"} {
		must(t, os.MkdirAll(filepath.Join(path, ".Outside", sub), 0o700))
	}
	c1.waitLine(`* LIST () "." "Outside"`)

	// Another process delivers into it and subscribes it.
	other, err := maildir.New(filepath.Join(st.dir, "mail"), &maildir.Options{Hostname: "other", PollInterval: 50 * time.Millisecond})
	must(t, err)
	defer other.Close()
	_, err = other.Deliver(context.Background(), path, "Outside", strings.NewReader(testMessage), &maildir.DeliverOptions{})
	must(t, err)
	c1.waitLine(`* STATUS "Outside" (MESSAGES 1 UIDNEXT 2 `)
	md, err := other.Open(context.Background(), path)
	must(t, err)
	defer md.Close()
	must(t, md.Subscribe(context.Background(), "Outside", true))
	c1.waitLine(`* LIST (\Subscribed) "." "Outside"`)

	// This server's own change: told once.
	c2 := dial(t, addr)
	c2.login("alice@local.example")
	c2.ok("CREATE Inside")
	// Deleted as Dovecot does: moved out of the way, then removed.
	must(t, os.Rename(filepath.Join(path, ".Outside"), filepath.Join(st.dir, "deleted")))
	var seen []string
	for {
		l := c1.line()
		seen = append(seen, l)
		if strings.Contains(l, `* LIST (\NonExistent) "." "Outside"`) {
			break
		}
	}
	if n := strings.Count(strings.Join(seen, "\n"), `"Inside"`); n != 1 {
		t.Fatalf("CREATE Inside told %d times: %q", n, seen)
	}
	c1.ok("NOOP")
}

// TestNotifyOutsideChangesFilters: a mailbox named by a MAILBOXES filter
// before it exists, and one created below a SUBTREE, both made outside
// the server, are watched for message events once they appear; a folder
// outside every filter is not told.
func TestNotifyOutsideChangesFilters(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	path, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)
	mkfolder := func(dir string) {
		for _, sub := range []string{"cur", "new", "tmp"} {
			must(t, os.MkdirAll(filepath.Join(path, dir, sub), 0o700))
		}
	}
	mkfolder(".Projects")
	c1 := dial(t, addr)
	c1.login("alice@local.example")
	c1.ok("NOTIFY SET (mailboxes Later (MessageNew MessageExpunge)) (subtree Projects (MessageNew MessageExpunge MailboxName))")
	other, err := maildir.New(filepath.Join(st.dir, "mail"), &maildir.Options{Hostname: "other", PollInterval: 50 * time.Millisecond})
	must(t, err)
	defer other.Close()
	deliver := func(folder string) {
		_, err := other.Deliver(context.Background(), path, folder, strings.NewReader(testMessage), &maildir.DeliverOptions{})
		must(t, err)
	}

	mkfolder(".Elsewhere")
	mkfolder(".Projects.2025")
	var seen []string
	for {
		l := c1.line()
		seen = append(seen, l)
		if strings.Contains(l, `* LIST () "." "Projects.2025"`) {
			break
		}
	}
	if has(seen, "Elsewhere") {
		t.Fatalf("a folder outside the filters was told: %q", seen)
	}
	deliver("Projects.2025")
	c1.waitLine(`* STATUS "Projects.2025" (MESSAGES 1 UIDNEXT 2 `)

	// MAILBOXES without MailboxName: no LIST, but its messages are told.
	mkfolder(".Later")
	// The watch takes the new folder when it is told of it; a LIST of
	// another folder created after it marks that moment.
	mkfolder(".Projects.2026")
	c1.waitLine(`* LIST () "." "Projects.2026"`)
	deliver("Later")
	c1.waitLine(`* STATUS "Later" (MESSAGES 1 UIDNEXT 2 `)
}

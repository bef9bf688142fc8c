package imap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestTwoSessionsAndDelivery interleaves two sessions on one INBOX with
// deliveries and checks that each keeps its own sequence numbers right.
func TestTwoSessionsAndDelivery(t *testing.T) {
	st, addr := selectedStack(t) // UIDs 1 2 3
	a := dial(t, addr)
	a.login("alice@local.example")
	a.ok("SELECT INBOX")
	b := dial(t, addr)
	b.login("alice@local.example")
	b.ok("SELECT INBOX")

	// A expunges message 1; B has not been told yet.
	a.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	wantLine(t, a.ok("EXPUNGE"), "* 1 EXPUNGE")
	st.deliver("alice@local.example", "INBOX", testMessage) // UID 4

	// A FETCH does not expunge: B's sequence numbers still count
	// message 1, which is simply not answered, and UID 4 is not shown
	// before its EXISTS.
	lines := b.ok("FETCH 1:* (UID)")
	if has(lines, "EXPUNGE") || has(lines, "UID 1)") {
		t.Fatalf("FETCH during pending expunge: %q", lines)
	}
	wantLine(t, lines, "* 2 FETCH (UID 2)")
	wantLine(t, lines, "* 3 FETCH (UID 3)")
	if has(lines, "UID 4") && !has(lines, "* 3 EXISTS") && !has(lines, "* 4 EXISTS") {
		t.Fatalf("UID 4 fetched before EXISTS: %q", lines)
	}
	// IDLE brings B up to date: the expunge, then the new message (the
	// delivery's event reaches the session asynchronously, at once).
	b.send("i0 IDLE")
	waitLine(t, b, "* 1 EXPUNGE")
	waitLine(t, b, "* 3 EXISTS")
	b.send("DONE")
	b.until("i0")
	a.send("i0 IDLE")
	waitLine(t, a, "* 3 EXISTS")
	a.send("DONE")
	a.until("i0")
	for _, cl := range []*client{a, b} {
		lines := cl.ok("FETCH 1:* (UID)")
		if len(lines) != 3 || !has(lines, "* 1 FETCH (UID 2)") || !has(lines, "* 3 FETCH (UID 4)") {
			t.Fatalf("after sync: %q", lines)
		}
	}

	// B idles; A's flag change and a delivery reach it at once.
	b.send("i1 IDLE")
	if l := b.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	a.ok(`STORE 2 +FLAGS.SILENT (\Flagged)`)
	waitLine(t, b, "* 2 FETCH", `\Flagged`)
	st.deliver("alice@local.example", "INBOX", testMessage) // UID 5
	waitLine(t, b, "* 4 EXISTS")
	// A change by another process (a file dropped into new/) arrives
	// through maildir's polling within 2 s.
	dropMessage(t, st, "alice", "INBOX")
	start := time.Now()
	waitLine(t, b, "* 5 EXISTS")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("external delivery took %v", d)
	}
	b.send("DONE")
	if _, tagged := b.until("i1"); !strings.HasPrefix(tagged, "OK") {
		t.Fatal(tagged)
	}
	// A sees everything, and its own flag change is not reported back
	// to it.
	a.send("i2 IDLE")
	lines = nil
	for !has(lines, "* 5 EXISTS") {
		lines = append(lines, a.line())
	}
	a.send("DONE")
	a.until("i2")
	if has(lines, `\Flagged`) {
		t.Fatalf("own STORE.SILENT echoed: %q", lines)
	}
	wantLine(t, a.ok("FETCH 5 UID"), "UID 6")
}

// waitLine reads lines until one holds all of subs.
func waitLine(t *testing.T, cl *client, subs ...string) {
	t.Helper()
	var seen []string
	for {
		l := cl.line()
		if has([]string{l}, subs...) {
			return
		}
		seen = append(seen, l)
		if len(seen) > 50 {
			t.Fatalf("no %q in %q", subs, seen)
		}
	}
}

// dropMessage writes a message into a folder's new/ as another MDA
// would, bypassing this process's Store.
func dropMessage(t *testing.T, st *testStack, user, folder string) {
	t.Helper()
	dir := filepath.Join(st.dir, "mail/local.example", user, "Maildir")
	if folder != "INBOX" {
		dir = filepath.Join(dir, "."+folder)
	}
	name := fmt.Sprintf("%d.M1P99.other", time.Now().Unix())
	tmp := filepath.Join(dir, "tmp", name)
	must(t, os.WriteFile(tmp, []byte(testMessage), 0o600))
	must(t, os.Rename(tmp, filepath.Join(dir, "new", name)))
}

// TestClientFlow drives the server with go-imap's own client.
func TestClientFlow(t *testing.T) {
	st, addr := selectedStack(t)
	c, exists := dialCounting(t, addr)
	defer c.Close()
	must(t, c.Login("alice@local.example", testPassword).Wait())
	sel, err := c.Select("INBOX", nil).Wait()
	must(t, err)
	if sel.NumMessages != 3 {
		t.Fatalf("NumMessages %d", sel.NumMessages)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{
		UID: true, Flags: true, Envelope: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	must(t, err)
	if len(msgs) != 3 || msgs[1].Envelope.Subject != "Reisekosten überprüft" || msgs[0].RFC822Size != int64(len(testMessage)) {
		for _, m := range msgs {
			t.Logf("%+v %+v", m, m.Envelope)
		}
		t.Fatal("unexpected FETCH data")
	}
	if got := string(msgs[0].FindBodySection(&imap.FetchItemBodySection{})); got != testMessage {
		t.Fatalf("BODY[] %q", got)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{Text: []string{"münchen"}}, nil).Wait()
	must(t, err)
	if uids := data.AllUIDs(); len(uids) != 1 || uids[0] != 2 {
		t.Fatalf("search %v", uids)
	}
	mv, err := c.Move(imap.UIDSetNum(2), "Archive").Wait()
	must(t, err)
	if mv.DestUIDs.String() != "1" {
		t.Fatalf("MOVE %+v", mv)
	}
	idle, err := c.Idle()
	must(t, err)
	st.deliver("alice@local.example", "INBOX", testMessage)
	select {
	case n := <-exists:
		if n != 3 {
			t.Fatalf("EXISTS %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no EXISTS during IDLE")
	}
	must(t, idle.Close())
	must(t, idle.Wait())
	must(t, c.Logout().Wait())
}

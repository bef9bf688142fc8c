package imap

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
	"github.com/mailagent/mailagent/maildir"
)

// TestSortThreadFromCache: SORT and THREAD read each message's header
// once; afterwards they answer from the folder's cache, also in a new
// server (a restart), with the message files cut to nothing behind
// their back.
func TestSortThreadFromCache(t *testing.T) {
	st := newTestStack(t)
	for _, m := range []string{
		"Message-ID: <a@x>\r\n" + sortMessage("amy@x.example", "carl@x.example", "Budget", "Tue, 03 Mar 2026 10:00:00 +0000", 300),
		"Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\n" + sortMessage(`"Bob" <bob@x.example>`, "anna@x.example", "Re: Budget", "Wed, 04 Mar 2026 10:00:00 +0000", 100),
		"Message-ID: <c@x>\r\nReferences: <a@x> <b@x>\r\n" + sortMessage("carl@x.example", "bert@x.example", "Re: Re: Budget", "Sun, 01 Mar 2026 23:00:00 -0500", 200),
		sortMessage("dora@x.example", "anna@x.example", "Agenda", "Mon, 02 Mar 2026 01:00:00 +0000", 50),
	} {
		st.deliver("alice@local.example", "INBOX", m)
	}
	queries := []string{
		"UID SORT (REVERSE DATE) UTF-8 ALL",
		"SORT (SUBJECT) UTF-8 ALL",
		"SORT (DISPLAYFROM) UTF-8 ALL",
		"SORT (CC TO) UTF-8 ALL",
		"UID THREAD REFERENCES UTF-8 ALL",
		"THREAD ORDEREDSUBJECT UTF-8 ALL",
		"THREAD REFS UTF-8 ALL",
	}
	ask := func(addr string) []string {
		cl := dial(t, addr)
		cl.login("alice@local.example")
		cl.ok("SELECT INBOX")
		var out []string
		for _, q := range queries {
			lines := cl.ok("%s", q)
			if len(lines) != 1 {
				t.Fatalf("%s: %q", q, lines)
			}
			out = append(out, lines[0])
		}
		cl.ok("LOGOUT")
		return out
	}
	srv, addr := st.serve(st.options())
	first := ask(addr)
	if first[0] != "* SORT 2 1 3 4" || first[4] != "* THREAD (4)(1 2 3)" {
		t.Fatalf("answers %q", first)
	}
	cur := filepath.Join(st.dir, "mail/local.example/alice/Maildir/cur")
	entries, err := os.ReadDir(cur)
	must(t, err)
	for _, e := range entries {
		must(t, os.Truncate(filepath.Join(cur, e.Name()), 0))
	}
	if again := ask(addr); !slices.Equal(again, first) {
		t.Fatalf("from the cache: %q, first %q", again, first)
	}
	srv.Close()
	// A new Store: the folder's index and cache are read from disk.
	md, err := maildir.New(filepath.Join(st.dir, "mail"), &maildir.Options{Hostname: "test"})
	must(t, err)
	t.Cleanup(func() { md.Close() })
	opts := st.options()
	opts.Store = md
	_, addr2 := st.serve(opts)
	if again := ask(addr2); !slices.Equal(again, first) {
		t.Fatalf("after a restart: %q, first %q", again, first)
	}
}

// FuzzSortFields decodes arbitrary cached sort fields: no panic, and
// what decodes encodes to bytes that decode to the same fields.
func FuzzSortFields(f *testing.F) {
	var h mail.Header
	h.Set("Date", "Tue, 03 Mar 2026 10:00:00 +0000")
	h.Set("Subject", "Re: [list] budget")
	h.Set("From", `"Bob" <bob@x.example>`)
	h.Set("References", "<a@x> <b@x>")
	f.Add(deriveSortFields(&h).encode())
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := decodeSortFields(b)
		if err != nil {
			return
		}
		again, err := decodeSortFields(sf.encode())
		if err != nil || !reflect.DeepEqual(again, sf) {
			t.Fatalf("%q: %+v, re-encoded %+v (%v)", b, sf, again, err)
		}
	})
}

// TestSortThreadFollowOtherWriters: the sort fields the folder's shared
// state holds follow what another process does to the Maildir (a file
// removed, one dropped into new/, one replaced by a file of another
// name as a move out and back in does): SORT and THREAD answer from
// the files as they are, in the session that saw the changes and in a
// new one.
func TestSortThreadFollowOtherWriters(t *testing.T) {
	st := newTestStack(t)
	for _, m := range []string{
		"Message-ID: <a@x>\r\n" + sortMessage("amy@x.example", "carl@x.example", "Budget", "Tue, 03 Mar 2026 10:00:00 +0000", 30),
		"Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\n" + sortMessage("bob@x.example", "amy@x.example", "Re: Budget", "Wed, 04 Mar 2026 10:00:00 +0000", 10),
		"Message-ID: <c@x>\r\n" + sortMessage("carl@x.example", "amy@x.example", "Agenda", "Sun, 01 Mar 2026 10:00:00 +0000", 20),
	} {
		st.deliver("alice@local.example", "INBOX", m)
	}
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	check := func(cl *client, sort, thread string) {
		t.Helper()
		if got := cl.ok("UID SORT (DATE) UTF-8 ALL"); len(got) != 1 || got[0] != sort {
			t.Errorf("SORT: %q, want %q", got, sort)
		}
		if got := cl.ok("UID THREAD REFERENCES UTF-8 ALL"); len(got) != 1 || got[0] != thread {
			t.Errorf("THREAD: %q, want %q", got, thread)
		}
	}
	check(cl, "* SORT 3 1 2", "* THREAD (3)(1 2)")
	dir := filepath.Join(st.dir, "mail/local.example/alice/Maildir")
	file := func(id string) string { // the file of Message-ID id
		t.Helper()
		names, err := filepath.Glob(filepath.Join(dir, "cur", "*"))
		must(t, err)
		for _, n := range names {
			if b, err := os.ReadFile(n); err == nil && strings.HasPrefix(string(b), "Message-ID: "+id+"\r\n") {
				return n
			}
		}
		t.Fatalf("no file of %s", id)
		return ""
	}
	// idleUntil waits in IDLE until the session has been told of every
	// change in want.
	idleUntil := func(want ...string) {
		t.Helper()
		cl.send("i1 IDLE")
		if l := cl.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("IDLE: %q", l)
		}
		var seen []string
		for _, w := range want {
			for !has(seen, w) {
				seen = append(seen, cl.line())
			}
		}
		cl.send("DONE")
		if _, tagged := cl.until("i1"); !strings.HasPrefix(tagged, "OK") {
			t.Fatal(tagged)
		}
	}

	// Message 1 removed; a reply to message 3, dated before it, dropped
	// into new/ (UID 4).
	one := file("<a@x>")
	must(t, os.Remove(one))
	must(t, os.WriteFile(filepath.Join(dir, "new", "1772000000.M1P99.other"),
		[]byte("Message-ID: <d@x>\r\nIn-Reply-To: <c@x>\r\n"+sortMessage("dora@x.example", "carl@x.example", "Re: Agenda", "Sat, 28 Feb 2026 10:00:00 +0000", 5)), 0o600))
	idleUntil("* 1 EXPUNGE", "* 3 EXISTS")
	check(cl, "* SORT 4 3 2", "* THREAD (3 4)(2)")

	// Message 3 replaced by a file of another name, dated after the
	// others (UID 5).
	three := file("<c@x>")
	body, err := os.ReadFile(three)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "cur", "1772000001.M2P99.other:2,"),
		[]byte(strings.Replace(string(body), "Sun, 01 Mar", "Thu, 05 Mar", 1)), 0o600))
	must(t, os.Remove(three))
	idleUntil("* 2 EXPUNGE", "* 3 EXISTS")
	check(cl, "* SORT 4 2 5", "* THREAD (2)(5 4)")

	fresh := dial(t, addr)
	fresh.login("alice@local.example")
	fresh.ok("SELECT INBOX")
	check(fresh, "* SORT 4 2 5", "* THREAD (2)(5 4)")
}

package imap

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
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

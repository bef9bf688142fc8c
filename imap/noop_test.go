package imap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/maildir"
)

// TestNoopSeesOtherProcesses: NOOP and CHECK are polls (RFC 9051
// section 6.1.2): a message another program drops into new/ and a flag
// change made by renaming a file in cur/ are in their answer, without
// waiting for the Store's poller (an hour here, and no fsnotify).
func TestNoopSeesOtherProcesses(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	slow, err := maildir.New(filepath.Join(st.dir, "mail"), &maildir.Options{Hostname: "test", PollInterval: time.Hour, NoWatcher: true})
	must(t, err)
	defer slow.Close()
	opts := st.options()
	opts.Store = slow
	_, addr := st.serve(opts)
	inbox, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)

	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX (CONDSTORE)")
	cur, err := os.ReadDir(filepath.Join(inbox, "cur"))
	must(t, err)
	if len(cur) != 1 {
		t.Fatalf("cur/ holds %d files, want 1", len(cur))
	}
	name, _, _ := strings.Cut(cur[0].Name(), ":2,")
	must(t, os.Rename(filepath.Join(inbox, "cur", cur[0].Name()), filepath.Join(inbox, "cur", name+":2,F")))
	lines := cl.ok("NOOP")
	wantLine(t, lines, "* 1 FETCH (", `\Flagged`, "MODSEQ (")

	must(t, os.WriteFile(filepath.Join(inbox, "new", "1765090000.M1P99.mx"), []byte("Subject: dropped\r\n\r\nx\r\n"), 0o600))
	wantLine(t, cl.ok("CHECK"), "* 2 EXISTS")
}

package imap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/maildir"
)

// The per-user folder limits of maildir.Options answer NO [LIMIT] on
// every command that would create a folder or a subscription, and leave
// nothing on disk.
func TestFolderLimits(t *testing.T) {
	st := newTestStack(t)
	// The five default special folders count: two more fit.
	md, err := maildir.New(filepath.Join(st.dir, "mail"), &maildir.Options{Hostname: "test", PollInterval: 200 * time.Millisecond, MaxFolders: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	opts := st.options()
	opts.Store = md
	_, addr := st.serve(opts)
	path, err := md.UserPath("local.example", "alice")
	if err != nil {
		t.Fatal(err)
	}
	onDisk := func(name string) bool {
		_, err := os.Stat(filepath.Join(path, "."+name))
		return err == nil
	}
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("CREATE a")
	cl.ok("CREATE b")
	for _, c := range []string{"CREATE c", "CREATE c (USE (\\Archive))", "RENAME INBOX c"} {
		if _, got := cl.cmd("%s", c); got != "NO [LIMIT] Too many mailboxes" {
			t.Fatalf("%s: %q", c, got)
		}
	}
	if onDisk("c") {
		t.Fatal("a refused folder is on disk")
	}
	cl.expect("NO [ALREADYEXISTS]", "CREATE a")
	cl.ok("RENAME a z") // renaming adds no folder
	cl.ok("DELETE b")
	cl.ok("CREATE c")

	deep := strings.Repeat("d.", maildir.DefaultMaxFolderDepth-1) + "d"
	if _, got := cl.cmd("CREATE %s.e", deep); got != "NO [LIMIT] Mailbox hierarchy too deep" {
		t.Fatalf("CREATE at 17 levels: %q", got)
	}
	if _, got := cl.cmd("RENAME z %s", deep+".z"); got != "NO [LIMIT] Mailbox hierarchy too deep" {
		t.Fatalf("RENAME to 17 levels: %q", got)
	}
	if onDisk(deep+".e") || onDisk(deep+".z") || !onDisk("z") {
		t.Fatal("a refused CREATE or RENAME changed the disk")
	}
}

func TestSubscriptionLimit(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	path, err := st.maildirs.UserPath("local.example", "alice")
	if err != nil {
		t.Fatal(err)
	}
	// Fill the file to the limit with names that do not exist (the five
	// special folders subscribed at the first login are among them).
	var b strings.Builder
	b.WriteString("V\t2\n\n")
	for _, n := range []string{"Drafts", "Junk", "Trash", "Sent", "Archive"} {
		b.WriteString(n + "\n")
	}
	for i := 5; i < 10000; i++ {
		fmt.Fprintf(&b, "gone%d\n", i)
	}
	p := filepath.Join(path, "subscriptions")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, got := cl.cmd("SUBSCRIBE new"); got != "NO [LIMIT] Too many subscriptions" {
		t.Fatalf("SUBSCRIBE past the limit: %q", got)
	}
	if data, _ := os.ReadFile(p); string(data) != b.String() {
		t.Fatal("a refused SUBSCRIBE changed the subscriptions file")
	}
	cl.ok("SUBSCRIBE gone7") // already there
	cl.ok("UNSUBSCRIBE gone7")
	cl.ok("SUBSCRIBE new")
	lines := cl.ok(`LSUB "" new`)
	if len(lines) != 1 || !strings.HasSuffix(lines[0], ` "new"`) {
		t.Fatalf("LSUB new: %q", lines)
	}
}

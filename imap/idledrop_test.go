package imap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/interop"
)

// TestIdleSeesMaildirDrop: another program writing the Maildir, as
// Dovecot's LMTP or a procmail does (a file written in tmp/ and moved
// into new/ by a shell), and a flag change by renaming a file in cur/
// (as Dovecot's own IMAP server or "mv" does), reach a client waiting
// in IDLE: "* 2 EXISTS", then the renamed message's new FLAGS with a
// MODSEQ above the one it selected with. The new message's bytes are
// the file's.
func TestIdleSeesMaildirDrop(t *testing.T) {
	sh := interop.Program(t, "sh")
	t.Parallel()
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	_, addr := st.serve(st.options())
	inbox, err := st.maildirs.UserPath("local.example", "alice")
	must(t, err)

	cl := dial(t, addr)
	cl.login("alice@local.example")
	base := modSeqOf(t, cl.ok("SELECT INBOX (CONDSTORE)"), "HIGHESTMODSEQ")
	cl.send("i1 IDLE")
	if l := cl.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	// waitFor reads untagged lines (each within 10 s) until one has
	// every sub.
	waitFor := func(what string, subs ...string) string {
		t.Helper()
		var seen []string
		for range 50 {
			l := cl.line()
			if has([]string{l}, subs...) {
				return l
			}
			seen = append(seen, l)
		}
		t.Fatalf("no %s during IDLE: %q", what, seen)
		return ""
	}

	msg := "From: lmtp@remote.example\r\nTo: alice@local.example\r\nSubject: dropped\r\n\r\nDelivered by another program.\r\n"
	src := filepath.Join(t.TempDir(), "msg")
	must(t, os.WriteFile(src, []byte(msg), 0o600))
	drop := exec.Command(sh, "-c", `cat "$1" > "$2/tmp/1765090000.M1P99.mx" && mv "$2/tmp/1765090000.M1P99.mx" "$2/new/1765090000.M1P99.mx"`, "sh", src, inbox)
	if out, err := drop.CombinedOutput(); err != nil {
		t.Fatalf("dropping a message: %v\n%s", err, out)
	}
	waitFor("EXISTS for the dropped message", "* 2 EXISTS")

	// Message 1's file, wherever it is, renamed into cur/ with F and S.
	var old string
	for _, sub := range []string{"cur", "new"} {
		es, err := os.ReadDir(filepath.Join(inbox, sub))
		must(t, err)
		for _, e := range es {
			b, err := os.ReadFile(filepath.Join(inbox, sub, e.Name()))
			must(t, err)
			if string(b) == testMessage {
				old = filepath.Join(inbox, sub, e.Name())
			}
		}
	}
	if old == "" {
		t.Fatal("message 1's file not found")
	}
	name, _, _ := strings.Cut(filepath.Base(old), ":2,")
	mv := exec.Command(sh, "-c", `mv "$1" "$2"`, "sh", old, filepath.Join(inbox, "cur", name+":2,FS"))
	if out, err := mv.CombinedOutput(); err != nil {
		t.Fatalf("renaming: %v\n%s", err, out)
	}
	l := waitFor("FETCH FLAGS for the renamed message", "* 1 FETCH (", `\Flagged`, `\Seen`, "MODSEQ (")
	_, after, _ := strings.Cut(l, "MODSEQ (")
	m, err := strconv.ParseUint(strings.TrimRight(after, ")"), 10, 64)
	if err != nil || m <= base {
		t.Errorf("MODSEQ of the renamed message %q, want above %d", l, base)
	}
	cl.send("DONE")
	if _, reply := cl.until("i1"); !strings.HasPrefix(reply, "OK") {
		t.Fatalf("IDLE ended with %q", reply)
	}
	wantLine(t, cl.ok("UID FETCH 2 (BODY.PEEK[])"), "BODY[] {"+strconv.Itoa(len(msg))+"}")
	lines := cl.ok("UID FETCH 2 (BODY.PEEK[TEXT])")
	if !has(lines, "Delivered by another program.") {
		t.Errorf("the dropped message's text: %q", lines)
	}
}

package imap

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/internal/interop"
)

// qresyncCache reads the cache testdata/imaplib_qresync.py keeps: per
// folder the flags of each UID, and each message's bytes in msgs/.
func qresyncCache(t *testing.T, dir string) mailState {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	must(t, err)
	var state struct {
		Folders map[string]struct {
			Dir  string
			Msgs map[string]struct{ Flags []string }
		}
	}
	must(t, json.Unmarshal(b, &state))
	s := mailState{}
	for name, f := range state.Folders {
		s[name] = nil
		for uid, m := range f.Msgs {
			body, err := os.ReadFile(filepath.Join(dir, "msgs", f.Dir+"."+uid))
			must(t, err)
			s.add(name, string(body), m.Flags)
		}
	}
	return s
}

// TestInteropPythonQresync: an offline client in Python's imaplib that
// syncs as Thunderbird does (ENABLE QRESYNC; SELECT (QRESYNC
// (uidvalidity modseq known-uids)); local flag changes sent with
// UNCHANGEDSINCE) keeps a cache of the fixture, through a counting
// proxy. The full sync fetches every message whole. Then the server
// changes flags and keywords, expunges, receives a message and gains a
// folder nested below the non-ASCII one, itself with "&" and "Ü"; the
// client replaces a message's flags (a keyword removed), expunges one,
// appends one, and changes a
// message the server changed too (refused with MODIFIED: the server's
// flags win). The incremental sync is told exactly the expunged UIDs by
// VANISHED (EARLIER), exactly the changed messages' flags, and fetches
// whole only the two messages new on the server; a sync with nothing to
// do fetches nothing at all. After each the cache and the server hold
// the same folders, bytes, flags and keywords.
//
// It runs twice: naming folders in modified UTF-7, and after ENABLE
// UTF8=ACCEPT in UTF-8 (as Thunderbird does since version 115).
func TestInteropPythonQresync(t *testing.T) {
	python := interop.Program(t, "python3")
	t.Parallel()
	for _, mode := range []string{"mutf7", "utf8"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			pythonQresync(t, python, mode)
		})
	}
}

// pythonQresync is TestInteropPythonQresync in one of its modes.
func pythonQresync(t *testing.T, python, mode string) {
	st, addr, proxy := fixtureServer(t)
	host, port, _ := strings.Cut(proxy.Addr, ":")
	cache := t.TempDir()
	user := "alice@local.example"
	run := func(what string) (wireTraffic, []string) {
		t.Helper()
		out, err := exec.Command(python, "testdata/imaplib_qresync.py", host, port, user, testPassword, cache, mode).CombinedOutput()
		w := proxy.Take()
		if err != nil || !strings.HasSuffix(string(out), "OK\n") {
			t.Fatalf("imaplib_qresync.py (%s): %v\n%s\ndialog:\n%s", what, err, out, strings.Join(w.Transcript, "\n"))
		}
		lines := strings.Split(strings.TrimSuffix(string(out), "OK\n"), "\n")
		lines = slices.DeleteFunc(lines, func(l string) bool { return l == "" })
		t.Logf("imaplib_qresync.py %s: %s\n%q\n%q", what, w, w.Fetches, lines)
		return w, lines
	}
	check := func(what string) {
		t.Helper()
		diffState(t, what, serverState(t, addr, user), qresyncCache(t, cache))
		if t.Failed() {
			t.FailNow()
		}
	}

	full, lines := run("full sync")
	if full.Whole != 10 || full.FetchResp != 10 {
		t.Errorf("full sync: %d FETCH responses, %d whole messages, want the fixture's 10 and 10: %s", full.FetchResp, full.Whole, full)
	}
	if want := []string{"fetched INBOX 1:5", "fetched Projects 1", "fetched Projects.2026 1:2", "fetched Projects.Ärger & Co 1", "fetched Ärger & Co 1"}; !slices.Equal(lines, want) {
		t.Errorf("full sync reported %q, want %q", lines, want)
	}
	check("after the full sync")

	// The server's side.
	changeServerSide(t, st, addr, `\Flagged Project_X`)
	cl := dial(t, addr)
	cl.login(user)
	cl.ok("SELECT INBOX")
	cl.ok(`UID STORE 3 +FLAGS.SILENT ($Label2)`)
	cl.ok(`UID STORE 1 +FLAGS.SILENT (\Deleted)`)
	cl.ok("UID EXPUNGE 1")
	cl.ok("LOGOUT")
	st.deliver(user, "Ärger & Co.Neu & Übrig", clientMessage(14, "nested umlaut"), `\Seen`, "$Label1")
	// The client's side.
	changes, err := json.Marshal([]map[string]any{
		{"folder": "INBOX", "marker": "Message 4,", "op": "", "flags": []string{`\Flagged`, "Project_X"}},
		{"folder": "INBOX", "marker": "Message 3,", "op": "+", "flags": []string{`\Seen`}},
		{"folder": "INBOX", "marker": "Message 2,", "expunge": true},
		{"folder": "Ärger & Co", "append": clientMessage(11, "new on client"), "flags": []string{`\Seen`, "Project_X"}},
	})
	must(t, err)
	must(t, os.WriteFile(filepath.Join(cache, "changes.json"), changes, 0o600))

	inc, lines := run("incremental sync")
	want := []string{
		"modified INBOX 3",
		"appended Ärger & Co 2",
		"vanished INBOX 1",
		"changed INBOX 3:5",
		"vanished Projects 1",
		"fetched Projects.2026 3",
		"changed Ärger & Co 2",
		"fetched Ärger & Co.Neu & Übrig 1",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("incremental sync reported %q, want %q", lines, want)
	}
	if inc.Whole != 2 || inc.BodyResp != 2 {
		t.Errorf("incremental sync fetched %d messages (%d responses with a literal), want the 2 new on the server: %s", inc.Whole, inc.BodyResp, inc)
	}
	// INBOX's known UIDs are 1,3:5 (the client expunged 2 itself); the
	// server expunged 1 there and Projects' only message.
	newFolder := map[string]string{"utf8": "Ärger & Co.Neu & Übrig", "mutf7": "&AMQ-rger &- Co.Neu &- &ANw-brig"}[mode]
	if !has(inc.Transcript, `C: `, `SELECT "`+newFolder+`" (CONDSTORE)`) {
		t.Errorf("the new folder not selected by its name in %s:\n%s", mode, strings.Join(inc.Transcript, "\n"))
	}
	if !has(inc.Transcript, `C: `, `SELECT "INBOX" (QRESYNC (`, ` 1,3:5))`) || strings.Count(strings.Join(inc.Transcript, "\n"), "S: * VANISHED (EARLIER) 1\n") != 2 {
		t.Errorf("not told of the server's expunges in INBOX and Projects by VANISHED (EARLIER):\n%s", strings.Join(inc.Transcript, "\n"))
	}
	for _, f := range inc.Fetches {
		if strings.Contains(f, "1:*") {
			t.Errorf("incremental sync listed a whole folder: %q", f)
		}
	}
	check("after the incremental sync")
	srv := serverState(t, addr, user)
	for marker, want := range map[string]string{
		"Message 3, inbox.": `$Label2 \Answered`, // the server's change, the client's refused
		"Message 4, inbox.": `Project_X \Flagged`,
		"Message 5, inbox.": `Project_X \Flagged`,
	} {
		if got := flagsOf(t, srv["INBOX"], marker); got != want {
			t.Errorf("INBOX %q: flags %q, want %q", marker, got, want)
		}
	}
	if n := len(srv["INBOX"]); n != 3 {
		t.Errorf("INBOX holds %d messages after an expunge on each side, want 3", n)
	}

	idle, lines := run("sync with nothing to do")
	if len(lines) != 0 || idle.FetchResp != 0 || idle.Whole != 0 {
		t.Errorf("idle sync reported %q and %d FETCH responses: %s", lines, idle.FetchResp, idle)
	}
	check("after the idle sync")
}

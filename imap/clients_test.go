package imap

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/internal/interop"
)

// The real-client tests share one mailbox: nested folders, a non-ASCII
// name with "&" at the top and nested, system flags and keywords.
var clientFolders = []string{"INBOX", "Projects", "Projects.2026", "Ärger & Co", "Projects.Ärger & Co"}

// clientMessage is the fixture's message n, distinct from every other.
func clientMessage(n int, what string) string {
	return fmt.Sprintf("From: Alice <alice@local.example>\r\n"+
		"To: alice@local.example\r\n"+
		"Subject: %s %d\r\n"+
		"Message-ID: <%s.%d@fixture.example>\r\n"+
		"Date: Mon, 07 Dec 2026 00:%02d:00 +0000\r\n"+
		"\r\n"+
		"Message %d, %s.\r\n", what, n, strings.ReplaceAll(what, " ", "-"), n, n%60, n, what)
}

// fillClientMailbox delivers the fixture for alice: 10 messages in 5
// folders with \Seen, \Flagged, \Answered and the keywords $Label1 and
// Project_X.
func fillClientMailbox(st *testStack) {
	fillClientMailboxWith(func(folder, msg string, flags ...string) {
		st.deliver("alice@local.example", folder, msg, flags...)
	})
}

// fillClientMailboxWith delivers the fixture with deliver.
func fillClientMailboxWith(deliver func(folder, msg string, flags ...string)) {
	flags := [][]string{{`\Seen`}, {`\Seen`, `\Flagged`}, {`\Answered`}, {"$Label1", "Project_X"}, nil}
	for i, f := range flags {
		deliver("INBOX", clientMessage(i+1, "inbox"), f...)
	}
	deliver("Projects", clientMessage(6, "projects"), `\Seen`)
	deliver("Projects.2026", clientMessage(7, "nested"))
	deliver("Projects.2026", clientMessage(8, "nested"), `\Flagged`, `\Seen`)
	deliver("Ärger & Co", clientMessage(9, "umlaut"), `\Seen`, "$Label1")
	deliver("Projects.Ärger & Co", clientMessage(15, "nested umlaut"), `\Answered`, "Project_X")
}

// fixtureServer serves the fixture and puts a counting proxy in front.
func fixtureServer(t *testing.T) (*testStack, string, *wireCounter) {
	t.Helper()
	st := newTestStack(t)
	fillClientMailbox(st)
	_, addr := st.serve(st.options())
	return st, addr, countingProxy(t, addr)
}

// msgState is one message as both sides must hold it: its bytes and its
// flags, sorted (\Recent, which is no stored flag, left out).
type msgState struct {
	Body  string
	Flags string
}

// mailState is a whole account: folder name (UTF-8) to its messages,
// sorted.
type mailState map[string][]msgState

func (s mailState) add(folder, body string, flags []string) {
	fs := slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return strings.EqualFold(f, `\Recent`) })
	slices.Sort(fs)
	s[folder] = append(s[folder], msgState{Body: body, Flags: strings.Join(fs, " ")})
	slices.SortFunc(s[folder], func(a, b msgState) int { return strings.Compare(a.Body+a.Flags, b.Body+b.Flags) })
}

// systemOnly returns the state with keywords left out, for clients
// that sync only the system flags.
func (s mailState) systemOnly() mailState {
	out := mailState{}
	for folder, msgs := range s {
		out[folder] = nil
		for _, m := range msgs {
			var fs []string
			for _, f := range strings.Fields(m.Flags) {
				if strings.HasPrefix(f, `\`) {
					fs = append(fs, f)
				}
			}
			out.add(folder, m.Body, fs)
		}
	}
	return out
}

// keep returns the state of the named folders only.
func (s mailState) keep(folders ...string) mailState {
	out := mailState{}
	for _, f := range folders {
		out[f] = s[f]
	}
	return out
}

// serverState reads every folder of user through go-imap's client: the
// bytes of BODY.PEEK[] and the flags.
func serverState(t *testing.T, addr, user string) mailState {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	must(t, err)
	defer c.Close()
	must(t, c.Login(user, testPassword).Wait())
	boxes, err := c.List("", "*", nil).Collect()
	must(t, err)
	s := mailState{}
	for _, b := range boxes {
		if slices.Contains(b.Attrs, imap.MailboxAttrNoSelect) {
			continue
		}
		sel, err := c.Select(b.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		must(t, err)
		s[b.Mailbox] = nil
		if sel.NumMessages == 0 {
			continue
		}
		body := &imap.FetchItemBodySection{Peek: true}
		msgs, err := c.Fetch(seqAll(), &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{body}}).Collect()
		must(t, err)
		for _, m := range msgs {
			var flags []string
			for _, f := range m.Flags {
				flags = append(flags, string(f))
			}
			s.add(b.Mailbox, string(m.FindBodySection(body)), flags)
		}
	}
	must(t, c.Logout().Wait())
	return s
}

func seqAll() imap.SeqSet {
	var s imap.SeqSet
	s.AddRange(1, 0)
	return s
}

// maildirLetters are the Maildir info flags and their IMAP names.
var maildirLetters = map[rune]string{'D': `\Draft`, 'F': `\Flagged`, 'P': "$Forwarded", 'R': `\Answered`, 'S': `\Seen`, 'T': `\Deleted`}

// maildirState reads the client's local Maildirs: dirs maps a folder
// name to its directory; keywords maps a lowercase info letter to the
// keyword it stands for (offlineimap's keywordmapping).
func maildirState(t *testing.T, dirs map[string]string, keywords map[rune]string) mailState {
	t.Helper()
	s := mailState{}
	for folder, dir := range dirs {
		s[folder] = nil
		for _, sub := range []string{"new", "cur"} {
			es, err := os.ReadDir(filepath.Join(dir, sub))
			if err != nil {
				t.Fatalf("local folder %s: %v", folder, err)
			}
			for _, e := range es {
				b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
				must(t, err)
				var flags []string
				if _, info, ok := strings.Cut(e.Name(), ":2,"); ok {
					for _, r := range info {
						if f, ok := maildirLetters[r]; ok {
							flags = append(flags, f)
						} else if f, ok := keywords[r]; ok {
							flags = append(flags, f)
						}
					}
				}
				s.add(folder, string(b), flags)
			}
		}
	}
	return s
}

// mapBodies returns the state with f applied to every message's bytes:
// a client's documented local form (line ends, its tracking header).
func (s mailState) mapBodies(f func(string) string) mailState {
	out := mailState{}
	for folder, msgs := range s {
		out[folder] = nil
		for _, m := range msgs {
			out.add(folder, f(m.Body), strings.Fields(m.Flags))
		}
	}
	return out
}

// diffState fails the test when the two sides differ, naming what.
func diffState(t *testing.T, what string, server, local mailState) {
	t.Helper()
	for folder, want := range server {
		got, ok := local[folder]
		if !ok {
			t.Errorf("%s: folder %q missing on the client's side", what, folder)
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: folder %q differs\nserver %q\nclient %q", what, folder, want, got)
		}
	}
	for folder := range local {
		if _, ok := server[folder]; !ok {
			t.Errorf("%s: folder %q missing on the server", what, folder)
		}
	}
}

// renameFlags gives the local Maildir message whose bytes contain marker
// the info flags info (mbsync and offlineimap read them from the name).
func renameFlags(t *testing.T, dir, marker, info string) {
	t.Helper()
	for _, sub := range []string{"cur", "new"} {
		es, err := os.ReadDir(filepath.Join(dir, sub))
		must(t, err)
		for _, e := range es {
			p := filepath.Join(dir, sub, e.Name())
			b, err := os.ReadFile(p)
			must(t, err)
			if !strings.Contains(string(b), marker) {
				continue
			}
			base, _, _ := strings.Cut(e.Name(), ":2,")
			must(t, os.Rename(p, filepath.Join(dir, "cur", base+":2,"+info)))
			return
		}
	}
	t.Fatalf("no message with %q in %s", marker, dir)
}

// putLocal stores a new message in a local Maildir folder.
func putLocal(t *testing.T, dir, name, msg string) {
	t.Helper()
	for _, d := range []string{"cur", "new", "tmp"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o700))
	}
	must(t, os.WriteFile(filepath.Join(dir, "new", name), []byte(msg), 0o600))
}

// localFolders finds every Maildir folder below root (a directory with
// a cur/ subdirectory) and names it as the server does: its path below
// root with "." for "/", decoded from modified UTF-7 when the client
// stores names in that form (mbsync 1.4).
func localFolders(t *testing.T, root string, mutf7 bool) map[string]string {
	t.Helper()
	dirs := map[string]string{}
	must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if fi, err := os.Stat(filepath.Join(p, "cur")); err != nil || !fi.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := strings.ReplaceAll(rel, string(filepath.Separator), ".")
		if mutf7 {
			if name, err = imapwire.DecodeMUTF7(name); err != nil {
				return fmt.Errorf("local folder %q: %v", rel, err)
			}
		}
		if _, dup := dirs[name]; dup {
			return fmt.Errorf("two local folders named %q", name)
		}
		dirs[name] = p
		return nil
	}))
	return dirs
}

// checkSynced fails the test unless the server and the client's Maildirs
// below root hold the same folders, every one of them (the local names
// read as localFolders does), with the same messages, compared in the
// client's form (and with system flags only when systemOnly).
func checkSynced(t *testing.T, what, addr, root string, mutf7 bool, keywords map[rune]string, systemOnly bool, form func(string) string) {
	t.Helper()
	srv := serverState(t, addr, "alice@local.example")
	if systemOnly {
		srv = srv.systemOnly()
	}
	local := localFolders(t, root, mutf7)
	if got, want := slices.Sorted(maps.Keys(local)), slices.Sorted(maps.Keys(srv)); !slices.Equal(got, want) {
		t.Errorf("%s: the client's folders %q, the server's %q", what, got, want)
	}
	diffState(t, what, srv.mapBodies(form), maildirState(t, local, keywords).mapBodies(form))
	if t.Failed() {
		t.FailNow()
	}
}

// changeServerSide makes the sync tests' changes on the server: flags5
// added to INBOX message 5, \Seen taken from message 1, Projects'
// message expunged, a new message in Projects.2026.
func changeServerSide(t *testing.T, st *testStack, addr, flags5 string) {
	t.Helper()
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	cl.ok(`STORE 5 +FLAGS.SILENT (%s)`, flags5)
	cl.ok(`STORE 1 -FLAGS.SILENT (\Seen)`)
	cl.ok("SELECT Projects")
	cl.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	cl.ok("EXPUNGE")
	cl.ok("LOGOUT")
	st.deliver("alice@local.example", "Projects.2026", clientMessage(10, "new on server"))
}

// lfLines is a message with LF line ends, as mbsync and offlineimap
// store messages in Maildir.
func lfLines(b string) string { return strings.ReplaceAll(b, "\r\n", "\n") }

var tuidLine = regexp.MustCompile(`(?m)^X-TUID: [^\n]*\n`)

// mbsyncFixture serves the fixture behind a counting proxy and writes an
// mbsync configuration syncing it in plain text with the Maildirs below
// local.
func mbsyncFixture(t *testing.T) (st *testStack, addr string, proxy *wireCounter, local, conf string) {
	t.Helper()
	st, addr, proxy = fixtureServer(t)
	host, port, _ := strings.Cut(proxy.Addr, ":")
	local = filepath.Join(t.TempDir(), "local")
	must(t, os.MkdirAll(local, 0o700))
	return st, addr, proxy, local, mbsyncrc(t, host, port, local, "SSLType None\nAuthMechs LOGIN")
}

// TestInteropMbsyncIncremental syncs the fixture with isync's mbsync
// (through a counting proxy, in plain text so that it can read the
// dialog), changes both sides, syncs again and checks that only the new
// messages' bodies crossed, that both sides hold the same bytes and
// flags, and that a third sync with nothing to do transfers no message.
// isync 1.4 syncs the system flags, not keywords: those must stay
// untouched on the server.
func TestInteropMbsyncIncremental(t *testing.T) {
	mbsync := interop.Program(t, "mbsync")
	t.Parallel()
	st, addr, proxy, local, conf := mbsyncFixture(t)
	run := func(what string) wireTraffic {
		t.Helper()
		out, err := exec.Command(mbsync, "-c", conf, "-a").CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync (%s): %v\n%s", what, err, out)
		}
		w := proxy.Take()
		t.Logf("mbsync %s: %s", what, w)
		return w
	}
	dirs := map[string]string{
		"INBOX":         filepath.Join(local, "INBOX"),
		"Projects":      filepath.Join(local, "Projects"),
		"Projects.2026": filepath.Join(local, "Projects", "2026"),
		"Ärger & Co":    filepath.Join(local, "&AMQ-rger &- Co"),
	}
	// mbsync stores messages with LF line ends in Maildir and adds its
	// X-TUID header to every copy it makes, on either side: compare in
	// that form, system flags only.
	form := func(b string) string { return tuidLine.ReplaceAllString(lfLines(b), "") }
	check := func(what string) { checkSynced(t, what, addr, local, true, nil, true, form) }

	full := run("full sync")
	if full.Whole != 10 {
		t.Errorf("full sync fetched %d messages, want the fixture's 10: %s", full.Whole, full)
	}
	check("after the full sync")

	changeServerSide(t, st, addr, `\Flagged`)
	// Changes on the client: flags, a new message, a new folder.
	renameFlags(t, dirs["INBOX"], "Message 4,", "FS")
	putLocal(t, dirs["Ärger & Co"], "1700000000.local1.host", clientMessage(11, "new on client"))
	dirs["Notes"] = filepath.Join(local, "Notes")
	putLocal(t, dirs["Notes"], "1700000001.local2.host", clientMessage(12, "new folder on client"))

	inc := run("incremental sync")
	if inc.Whole != 1 || inc.BodyResp != 1 || inc.Commands["APPEND"] != 2 {
		t.Errorf("incremental sync fetched %d messages and appended %d, want 1 and 2: %s", inc.Whole, inc.Commands["APPEND"], inc)
	}
	check("after the incremental sync")
	if got := flagsOf(t, serverState(t, addr, "alice@local.example")["INBOX"], "Message 4,"); got != `$Label1 Project_X \Flagged \Seen` {
		t.Errorf("message 4 on the server after the sync: flags %q, want its keywords kept", got)
	}

	idle := run("sync with nothing to do")
	if idle.BodyResp != 0 || idle.Commands["APPEND"] != 0 || idle.Commands["UID STORE"] != 0 || idle.Commands["EXPUNGE"] != 0 {
		t.Errorf("idle sync moved something: %s", idle)
	}
	check("after the idle sync")
}

// TestInteropNeomuttHeaderCache opens INBOX with neomutt twice, with its
// header cache and CONDSTORE (and QRESYNC) on, through a counting proxy.
// The first open fetches every header; between the two a flag changes
// on the server and a message arrives; the second open fetches the
// headers of the new message only, asks for flags CHANGEDSINCE its
// cached modseq and gets the one changed message. A third open after an
// expunge is told of it with VANISHED (EARLIER). In the second session
// neomutt flags a message and copies it to "Ärger & Co" (the issue's
// case (a); a space in neomutt's mailbox prompt cycles mailboxes, so
// the pushed keys quote it); the server's state shows both. A last open
// copies INBOX to a local Maildir: the copy has the server's bytes,
// flags and keywords.
func TestInteropNeomuttHeaderCache(t *testing.T) {
	neomutt := interop.Program(t, "neomutt")
	scriptCmd := interop.Program(t, "script")
	t.Parallel()
	st, addr, proxy := fixtureServer(t)
	dir := t.TempDir()
	open := func(what, push string) wireTraffic {
		t.Helper()
		muttrc := filepath.Join(dir, "neomuttrc")
		must(t, os.WriteFile(muttrc, []byte(fmt.Sprintf(`set imap_user="alice@local.example"
set imap_pass="%s"
set ssl_starttls=no
set ssl_force_tls=no
set imap_condstore=yes
set imap_qresync=yes
set header_cache="%s/hcache"
set message_cachedir=""
set folder="imap://alice%%40local.example@%s/"
set record=""
set wait_key=no
set confirmappend=no
set confirmcreate=no
set quit=yes
set mark_old=no
set mbox_type=Maildir
push "%s<quit>"
`, testPassword, dir, proxy.Addr, push)), 0o600))
		runInTerminal(t, scriptCmd, dir, neomutt, muttrc, fmt.Sprintf("imap://alice%%40local.example@%s/INBOX", proxy.Addr))
		w := proxy.Take()
		t.Logf("neomutt %s: %s\n%q", what, w, w.Fetches)
		return w
	}

	first := open("first open", "")
	if first.BodyResp != 5 || first.Whole != 0 {
		t.Errorf("first open fetched %d header sets and %d whole messages, want INBOX's 5 and none: %s", first.BodyResp, first.Whole, first)
	}

	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	cl.ok(`STORE 2 -FLAGS.SILENT (\Flagged)`)
	cl.ok("LOGOUT")
	st.deliver("alice@local.example", "INBOX", clientMessage(13, "new on server"))

	second := open("second open", `<first-entry><flag-message><first-entry><copy-message>=Ärger<quote-char> &<quote-char> Co<enter><sync-mailbox>`)
	changedSince := false
	for _, f := range second.Fetches {
		changedSince = changedSince || strings.Contains(f, "CHANGEDSINCE") || strings.Contains(f, "QRESYNC")
	}
	if !changedSince {
		t.Errorf("second open did not ask for changes since its cached modseq: %q", second.Fetches)
	}
	// The new message's headers, and flags of the changed and the new
	// message (neomutt's own STORE echoes come on top).
	if second.BodyResp != 1 || second.Whole != 0 {
		t.Errorf("second open fetched %d header sets and %d whole messages, want the new message's 1 and none: %s", second.BodyResp, second.Whole, second)
	}

	// An expunge on the server: the third open hears of it as VANISHED
	// (EARLIER). neomutt 20220429 then fetches the headers at the
	// vanished sequence number again and lists every flag, exactly as
	// against Dovecot 2.3.19 (the same dialog); no message crosses.
	cl = dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	cl.ok(`UID STORE 3 +FLAGS.SILENT (\Deleted)`)
	cl.ok("EXPUNGE")
	cl.ok("LOGOUT")
	third := open("third open", "")
	if !has(third.Transcript, "S: * VANISHED (EARLIER) 3") || third.Whole != 0 {
		t.Errorf("third open was not told of UID 3's expunge by VANISHED (EARLIER), or fetched messages:\n%s", strings.Join(third.Transcript, "\n"))
	}

	srv := serverState(t, addr, "alice@local.example")
	if got := flagsOf(t, srv["INBOX"], "Message 1, inbox."); got != `\Flagged \Seen` {
		t.Errorf("neomutt's flag on message 1: server has %q", got)
	}
	if got := flagsOf(t, srv["INBOX"], "Message 2, inbox."); got != `\Seen` {
		t.Errorf("message 2 on the server: %q, want the server's change kept", got)
	}
	if len(srv["Ärger & Co"]) != 2 {
		t.Errorf("neomutt's copy to \"Ärger & Co\": %q", srv["Ärger & Co"])
	} else if got := flagsOf(t, srv["Ärger & Co"], "Message 1, inbox."); got != `\Flagged \Seen` {
		t.Errorf("neomutt's copy to \"Ärger & Co\" has flags %q", got)
	}

	// neomutt keeps no local copy of its own: a last open copies every
	// message to a local Maildir, which then holds INBOX's bytes (with
	// LF line ends and the Content-Length and Lines fields neomutt adds),
	// flags and keywords.
	local := filepath.Join(dir, "local")
	last := open("copy to a local Maildir", `<tag-pattern>~A<enter><tag-prefix><copy-message>`+local+`<enter>`)
	if last.Whole != len(srv["INBOX"]) {
		t.Errorf("copying fetched %d whole messages, want INBOX's %d: %s", last.Whole, len(srv["INBOX"]), last)
	}
	copied := mailState{}
	for _, m := range maildirState(t, map[string]string{"INBOX": local}, nil)["INBOX"] {
		flags := strings.Fields(m.Flags)
		if tags := muttTags.FindStringSubmatch(m.Body); tags != nil {
			flags = append(flags, strings.Fields(tags[1])...)
		}
		copied.add("INBOX", muttFields.ReplaceAllString(m.Body, ""), flags)
	}
	diffState(t, "neomutt's local copy", srv.keep("INBOX").mapBodies(lfLines), copied)
}

// neomutt adds Content-Length and Lines to a message it copies, and
// writes its keywords as a Tags field.
var (
	muttFields = regexp.MustCompile(`(?m)^(Content-Length: \d+|Lines: \d+|Tags: [^\n]*)\n`)
	muttTags   = regexp.MustCompile(`(?m)^Tags: ([^\n]*)\n`)
)

// TestInteropOfflineimap does for offlineimap what
// TestInteropMbsyncIncremental does for mbsync, keywords included
// (offlineimap's customflag_* map them to Maildir letters, from the
// server to the Maildir only): a full sync,
// changes on both sides, an incremental sync in which only the new
// messages cross, and a sync with nothing to do; both sides hold the same
// bytes, flags and keywords after each.
func TestInteropOfflineimap(t *testing.T) {
	offlineimap := interop.Program(t, "offlineimap")
	t.Parallel()
	st, addr, proxy := fixtureServer(t)
	host, port, _ := strings.Cut(proxy.Addr, ":")
	dir := t.TempDir()
	local := filepath.Join(dir, "local")
	conf := filepath.Join(dir, "offlineimaprc")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf(`[general]
accounts = test
metadata = %[1]s/meta
ui = basic

[Account test]
localrepository = local
remoterepository = remote
utf8foldernames = yes

[Repository local]
type = Maildir
localfolders = %[2]s
sep = /
customflag_a = $Label1
customflag_b = Project_X

[Repository remote]
type = IMAP
remotehost = %[3]s
remoteport = %[4]s
remoteuser = alice@local.example
remotepass = %[5]s
ssl = no
starttls = no
`, dir, local, host, port, testPassword)), 0o600))
	run := func(what string) wireTraffic {
		t.Helper()
		cmd := exec.Command(offlineimap, "-c", conf, "-o", "-u", "basic")
		cmd.Env = append(os.Environ(), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "ERROR") {
			t.Fatalf("offlineimap (%s): %v\n%s", what, err, out)
		}
		w := proxy.Take()
		t.Logf("offlineimap %s: %s\n%q", what, w, w.Fetches)
		return w
	}
	dirs := map[string]string{
		"INBOX":         filepath.Join(local, "INBOX"),
		"Projects":      filepath.Join(local, "Projects"),
		"Projects.2026": filepath.Join(local, "Projects", "2026"),
		"Ärger & Co":    filepath.Join(local, "Ärger & Co"),
	}
	keywords := map[rune]string{'a': "$Label1", 'b': "Project_X"}
	// offlineimap stores messages with LF line ends in Maildir.
	check := func(what string) { checkSynced(t, what, addr, local, false, keywords, false, lfLines) }

	full := run("full sync")
	if full.Whole != 10 {
		t.Errorf("full sync fetched %d messages, want the fixture's 10: %s", full.Whole, full)
	}
	check("after the full sync")

	changeServerSide(t, st, addr, `\Flagged Project_X`)
	renameFlags(t, dirs["INBOX"], "Message 4,", "FSab")
	// offlineimap maps keywords to letters from the server to Maildir
	// only: a letter added locally is not sent up (it stores "+FLAGS
	// ()"), so the local changes are to system flags.
	renameFlags(t, dirs["INBOX"], "Message 3,", "RS")
	putLocal(t, dirs["Ärger & Co"], "1700000000_0.1.host,FMD5=00000000000000000000000000000000:2,S", clientMessage(11, "new on client"))

	inc := run("incremental sync")
	if inc.Whole != 1 || inc.BodyResp != 1 || inc.Commands["APPEND"] != 1 {
		t.Errorf("incremental sync fetched %d messages (%d responses with a literal) and appended %d, want 1, 1 and 1: %s", inc.Whole, inc.BodyResp, inc.Commands["APPEND"], inc)
	}
	check("after the incremental sync")

	idle := run("sync with nothing to do")
	if idle.BodyResp != 0 || idle.Commands["APPEND"] != 0 || idle.Commands["UID STORE"] != 0 || idle.Commands["EXPUNGE"] != 0 {
		t.Errorf("idle sync moved something: %s", idle)
	}
	check("after the idle sync")
}

// TestInteropPythonImaplibFolders runs testdata/imaplib_folders.py:
// LOGIN, LIST, CREATE, SELECT, FETCH, SEARCH, COPY, APPEND, STORE and
// EXPUNGE with Python's imaplib on "Ärger & Co" and a new nested
// "Projekte.Übersicht", named in modified UTF-7 and then, after ENABLE
// UTF8=ACCEPT, in UTF-8; the server's folders then hold what the script
// did.
func TestInteropPythonImaplibFolders(t *testing.T) {
	python := interop.Program(t, "python3")
	t.Parallel()
	st := newTestStack(t)
	fillClientMailbox(st)
	_, addr := st.serve(st.options())
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command(python, "testdata/imaplib_folders.py", host, port, "alice@local.example", testPassword).CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "OK\n") {
		t.Fatalf("imaplib_folders.py: %v\n%s", err, out)
	}
	srv := serverState(t, addr, "alice@local.example")
	if b := srv["Ärger & Co"]; len(b) != 1 || !strings.HasSuffix(b[0].Body, "from imaplib\r\n") || b[0].Flags != `Project_X \Seen` {
		t.Errorf("Ärger & Co after the script: %q", b)
	}
	if b := srv["Projekte.Übersicht"]; len(b) != 1 || b[0].Body != clientMessage(9, "umlaut") || b[0].Flags != `$Label1 \Flagged \Seen` {
		t.Errorf("Projekte.Übersicht after the script: %q", b)
	}
}

package imap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/internal/interop"
	"github.com/mailagent/mailagent/internal/interop/dovecottest"
)

// dsyncPeer is a private Dovecot whose imapc storage reaches our server
// through a counting proxy, and whose own Maildir is served over IMAP
// so that its state can be read like ours.
type dsyncPeer struct {
	d       *dovecottest.Dovecot
	doveadm string
	proxy   *wireCounter
}

func newDsyncPeer(t *testing.T, serverAddr string) *dsyncPeer {
	t.Helper()
	doveadm := interop.Program(t, "doveadm")
	proxy := countingProxy(t, serverAddr)
	host, port, _ := strings.Cut(proxy.Addr, ":")
	d := dovecottest.Start(t, dovecottest.Options{
		Protocols: []string{"imap"},
		Users:     map[string]string{"alice@local.example": testPassword},
		// imapc's index is kept on disk so that a later run fetches
		// only what changed; modseq lets a two-way sync tell which
		// side changed a flag (CONDSTORE on our side).
		Config: fmt.Sprintf(`imapc_host = %s
imapc_port = %s
imapc_user = %%u
imapc_password = %s
imapc_ssl = no
imapc_features = rfc822.size fetch-headers modseq
mail_prefetch_count = 20
`, host, port, testPassword),
	})
	mail := filepath.Join(d.Root, "mail")
	must(t, os.Mkdir(mail, 0o755))
	d.ChownTree(t, mail)
	return &dsyncPeer{d: d, doveadm: doveadm, proxy: proxy}
}

// run runs doveadm with args for alice and returns the traffic it made.
func (p *dsyncPeer) run(t *testing.T, what string, args ...string) wireTraffic {
	t.Helper()
	full := append([]string{"-c", filepath.Join(p.d.Root, "dovecot.conf")}, args...)
	out, err := exec.Command(p.doveadm, full...).CombinedOutput()
	if err != nil {
		t.Logf("dialog:\n%s", strings.Join(p.proxy.Take().Transcript, "\n"))
		log, _ := os.ReadFile(filepath.Join(p.d.Root, "dovecot.log"))
		t.Fatalf("doveadm %s (%s): %v\n%s\n%s", strings.Join(args, " "), what, err, out, log)
	}
	w := p.proxy.Take()
	t.Logf("doveadm %s: %s\n%q\n%s", what, w, w.Fetches, out)
	return w
}

// TestInteropDoveadmSync: Dovecot as a client. doveadm backup -R with
// the imapc storage pulls the fixture (and 15 messages in "Sync") from
// our server into Dovecot's Maildir: the same bytes and flags on both
// sides, read over IMAP from each. A second backup after a new message
// and a flag change on our side fetches only that message's body. A
// first two-way doveadm sync changes nothing. Then a two-way sync after
// changes on both sides: 5 \Flagged and 10 unseen set on our server
// (the case (c), lost without CONDSTORE), a keyword added and
// one removed and an expunge on our side, flag and keyword changes and
// an expunge on Dovecot's side: every flag and keyword change survives,
// our expunge reaches Dovecot, and both sides end identical. A last
// two-way sync has nothing to do. (Two things Dovecot 2.3.19's imapc
// gets wrong against Dovecot's own server just as against ours are left
// out or asserted as they are: a message added on Dovecot's side fails
// the sync with "Expunged message uid=N reappeared", changes made on
// both sides to one folder are not synced at all, and an expunge on
// Dovecot's side is undone. TestInteropDoveadmSyncReference runs the
// same steps against Dovecot's IMAP server.)
func TestInteropDoveadmSync(t *testing.T) {
	t.Parallel()
	st := newTestStack(t)
	deliver := func(folder, msg string, flags ...string) { st.deliver("alice@local.example", folder, msg, flags...) }
	doveadmSyncScenario(t, deliver, func() string { _, addr := st.serve(st.options()); return addr })
}

// doveadmSyncScenario runs TestInteropDoveadmSync's steps against the
// server serve starts, after the fixture is stored with deliver.
func doveadmSyncScenario(t *testing.T, deliver func(folder, msg string, flags ...string), serve func() string) {
	fillClientMailboxWith(deliver)
	for i := range 15 {
		var flags []string
		if i >= 5 {
			flags = []string{`\Seen`}
		}
		deliver("Sync", clientMessage(20+i, "sync"), flags...)
	}
	addr := serve()
	p := newDsyncPeer(t, addr)
	user := "alice@local.example"
	same := func(what string) (ours, theirs mailState) {
		t.Helper()
		ours, theirs = serverState(t, addr, user), serverState(t, p.d.IMAP, user)
		diffState(t, what, ours, theirs)
		if t.Failed() {
			t.FailNow()
		}
		return ours, theirs
	}

	full := p.run(t, "backup -R (full)", "backup", "-R", "-u", user, "imapc:~/imapc")
	if full.Whole != 25 {
		t.Errorf("full backup fetched %d messages, want 25: %s", full.Whole, full)
	}
	same("after the full backup")

	deliver("INBOX", clientMessage(40, "new on server"))
	cl := dial(t, addr)
	cl.login(user)
	cl.ok("SELECT INBOX")
	cl.ok(`STORE 1 -FLAGS.SILENT (\Seen)`)
	inc := p.run(t, "backup -R (incremental)", "backup", "-R", "-u", user, "imapc:~/imapc")
	// Only the new message crosses whole; dsync matches the changed
	// folder's messages by their Date and Message-ID fields (imapc has
	// no GUIDs), fetched for that folder alone.
	if inc.Whole != 1 || inc.BodyResp-inc.Whole > 6 {
		t.Errorf("incremental backup fetched %d messages and %d header sets, want 1 and at most INBOX's 6: %s", inc.Whole, inc.BodyResp-inc.Whole, inc)
	}
	same("after the incremental backup")

	if first := p.run(t, "sync (two-way, first)", "sync", "-u", user, "imapc:~/imapc"); first.BodyResp != 0 || first.Commands["UID STORE"] != 0 {
		t.Errorf("a two-way sync after the backup moved something: %s", first)
	}
	same("after the first two-way sync")
	// Changes on our side: case (c).
	cl.ok("SELECT Sync")
	cl.ok(`STORE 1:5 +FLAGS.SILENT (\Flagged)`)
	cl.ok(`STORE 6:15 -FLAGS.SILENT (\Seen)`)
	// Keywords added and removed, and an expunge, on our side.
	cl.ok(`STORE 1 +FLAGS.SILENT (Our_Side)`)
	cl.ok(`SELECT "Projects.&AMQ-rger &- Co"`)
	cl.ok(`STORE 1 -FLAGS.SILENT (Project_X)`)
	cl.ok(`SELECT "Projects.2026"`)
	cl.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	cl.ok("EXPUNGE")
	cl.ok("LOGOUT")
	// Changes on Dovecot's side: flags, keywords, an expunge.
	dc := dial(t, p.d.IMAP)
	dc.login(user)
	dc.ok("SELECT INBOX")
	dc.ok(`STORE 5 +FLAGS.SILENT (\Flagged Dovecot_Side)`)
	dc.ok(`STORE 2 -FLAGS.SILENT (\Flagged)`)
	dc.ok(`SELECT "&AMQ-rger &- Co"`)
	dc.ok(`STORE 1 -FLAGS.SILENT ($Label1)`)
	dc.ok(`SELECT "Projects"`)
	dc.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	dc.ok("EXPUNGE")
	dc.ok("LOGOUT")

	two := p.run(t, "sync (two-way)", "sync", "-u", user, "imapc:~/imapc")
	t.Logf("two-way sync: %d FETCH commands %q", len(two.Fetches), two.Fetches)
	ours, _ := same("after the two-way sync")
	for i := range 15 {
		want := ""
		if i < 5 {
			want = `\Flagged`
		}
		if i == 0 {
			want = `Our_Side \Flagged`
		}
		if got := flagsOf(t, ours["Sync"], fmt.Sprintf("Message %d, sync.", 20+i)); got != want {
			t.Errorf("Sync message %d: flags %q after the two-way sync, want %q (our server's change lost)", i+1, got, want)
		}
	}
	for marker, want := range map[string]string{
		"Message 5, inbox.": `Dovecot_Side \Flagged`,
		"Message 2, inbox.": `\Seen`,
	} {
		if got := flagsOf(t, ours["INBOX"], marker); got != want {
			t.Errorf("a change to %q lost: flags %q on our server, want %q", marker, got, want)
		}
	}
	if got := flagsOf(t, ours["Ärger & Co"], "Message 9, umlaut."); got != `\Seen` {
		t.Errorf("Dovecot's keyword removal lost: flags %q on our server", got)
	}
	if got := flagsOf(t, ours["Projects.Ärger & Co"], "Message 15, nested umlaut."); got != `\Answered` {
		t.Errorf("our side's keyword removal lost: flags %q", got)
	}
	// Our side's expunge reaches Dovecot's side. One made on Dovecot's
	// side does not reach ours: Dovecot 2.3.19's imapc copies the
	// message back (UID COPY, then UID EXPUNGE of the old UID), against
	// Dovecot's own server just as against ours
	// (TestInteropDoveadmSyncReference); it stays on both sides.
	for folder, n := range map[string]int{"Projects.2026": 1, "Projects": 1} {
		if len(ours[folder]) != n {
			t.Errorf("%s after an expunge on one side: %d messages, want %d", folder, len(ours[folder]), n)
		}
	}

	// A second two-way sync has nothing to do and changes nothing.
	again := p.run(t, "sync (two-way, nothing to do)", "sync", "-u", user, "imapc:~/imapc")
	if again.Whole != 0 || again.Commands["UID STORE"] != 0 || again.Commands["APPEND"] != 0 || again.Commands["EXPUNGE"]+again.Commands["UID EXPUNGE"] != 0 {
		t.Errorf("a sync with nothing to do changed something: %s", again)
	}
	if after, _ := same("after the second two-way sync"); !reflect.DeepEqual(after, ours) {
		t.Errorf("the second two-way sync changed our server:\n%q\n%q", ours, after)
	}
}

// flagsOf returns the flags of the one message in msgs containing marker.
func flagsOf(t *testing.T, msgs []msgState, marker string) string {
	t.Helper()
	for _, m := range msgs {
		if strings.Contains(m.Body, marker) {
			return m.Flags
		}
	}
	t.Fatalf("no message with %q", marker)
	return ""
}

// TestInteropDoveadmMigrateIn: doveadm sync with the imapc storage
// copies a Dovecot INBOX to our server, as a migration into mailagent
// does. Dovecot's imapc sends a message with keywords and no system flag
// as "( Project_X)", the case (b): the dialog must carry one,
// and every message, flag and keyword must arrive, byte for byte.
// (Dovecot 2.3.19 cannot push a folder the server lacks this way —
// "Backend didn't update mailbox GUID", against its own IMAP server as
// against ours — and doveadm backup without -R tries to DELETE INBOX
// to recreate it, which both servers refuse; so INBOX only.)
func TestInteropDoveadmMigrateIn(t *testing.T) {
	t.Parallel()
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	p := newDsyncPeer(t, addr)
	user := "alice@local.example"
	dc := dial(t, p.d.IMAP)
	dc.login(user)
	appends := []struct{ folder, flags string }{
		{"INBOX", `\Seen`},
		{"INBOX", "Project_X"},
		{"INBOX", `$Label1 Project_X`},
		{"INBOX", `\Flagged \Answered $Label1`},
		{"INBOX", ""},
	}
	for i, a := range appends {
		dc.cmd(`CREATE "%s"`, a.folder) // NO [ALREADYEXISTS] after the first
		msg := clientMessage(50+i, "migrated")
		dc.send(fmt.Sprintf("a%d APPEND \"%s\" (%s) {%d+}\r\n%s", 100+i, a.folder, a.flags, len(msg), msg))
		if _, reply := dc.until(fmt.Sprintf("a%d", 100+i)); !strings.HasPrefix(reply, "OK") {
			t.Fatalf("APPEND to Dovecot: %q", reply)
		}
	}
	dc.ok("LOGOUT")
	// dsync gives two INBOXes with different GUIDs the greater GUID,
	// and imapc cannot change a remote folder's: the lowest GUID on
	// Dovecot's side makes its INBOX the one to change (a random one
	// fails half the runs, against Dovecot's own server too).
	p.run(t, "mailbox update", "mailbox", "update", "-u", user, "--mailbox-guid", "00000000000000000000000000000001", "INBOX")

	w := p.run(t, "sync (into our server)", "sync", "-u", user, "imapc:~/imapc")
	leading := false
	for _, l := range w.Transcript {
		leading = leading || strings.Contains(l, "( Project_X)") || strings.Contains(l, "( $Label1")
	}
	if !leading {
		t.Errorf("Dovecot sent no flag list with a leading space; the dialog:\n%s", strings.Join(w.Transcript, "\n"))
	}
	ours, theirs := serverState(t, addr, user), serverState(t, p.d.IMAP, user)
	diffState(t, "after the migration", theirs, ours)
	if got := flagsOf(t, ours["INBOX"], "Message 51, migrated."); got != "Project_X" {
		t.Errorf("keyword-only message: flags %q on our server", got)
	}
}

// TestInteropDoveadmSyncReference runs TestInteropDoveadmSync's steps
// with Dovecot's own IMAP server in our server's place: the same client
// gets the same outcomes, which shows that what that test accepts of
// Dovecot 2.3.19's imapc (an expunge on its side undone) is the
// client's doing.
func TestInteropDoveadmSyncReference(t *testing.T) {
	t.Parallel()
	d := dovecottest.Start(t, dovecottest.Options{Protocols: []string{"imap"}, Users: map[string]string{"alice@local.example": testPassword}})
	mail := filepath.Join(d.Root, "mail")
	must(t, os.Mkdir(mail, 0o755))
	d.ChownTree(t, mail)
	c := dial(t, d.IMAP)
	c.login("alice@local.example")
	deliver := func(folder, msg string, flags ...string) {
		name := imapwire.EncodeMUTF7(folder)
		c.cmd(`CREATE "%s"`, name) // NO [ALREADYEXISTS] after the first
		c.send(fmt.Sprintf("a1 APPEND \"%s\" (%s) {%d+}\r\n%s", name, strings.Join(flags, " "), len(msg), msg))
		if _, reply := c.until("a1"); !strings.HasPrefix(reply, "OK") {
			t.Fatalf("APPEND to Dovecot: %q", reply)
		}
	}
	doveadmSyncScenario(t, deliver, func() string { return d.IMAP })
}

package maildir

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDeliverSnapshotOpen(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	body := msg("one", 300)
	d := deliver(t, s, m, "INBOX", body)
	if d.Size != int64(len(body)) || d.VSize != int64(len(body)+strings.Count(body, "\n")) {
		t.Fatalf("sizes %d/%d for %d bytes", d.Size, d.VSize, len(body))
	}
	if got := filesIn(t, m.Path(), "new"); len(got) != 1 || !strings.HasSuffix(got[0], ",W="+itoa(d.VSize)) {
		t.Fatalf("new/ holds %v", got)
	}
	in := folder(t, m, "inbox")
	snap := snapshot(t, in)
	if len(snap.Messages) != 1 || snap.Messages[0].UID != 1 || snap.UIDNext != 2 || snap.UIDValidity == 0 {
		t.Fatalf("snapshot %+v", snap)
	}
	if got := snap.Messages[0]; got.Size != d.Size || got.VSize != d.VSize || !got.Recent {
		t.Fatalf("message %+v", got)
	}
	// Seen by a session: moved to cur/ with an empty info, as Dovecot does.
	if got := filesIn(t, m.Path(), "cur"); len(got) != 1 || got[0] != d.Key+":2," {
		t.Fatalf("cur/ holds %v", got)
	}
	fh, _, err := in.Open(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(fh)
	fh.Close()
	if string(data) != body {
		t.Fatal("content differs")
	}
	ul, err := os.ReadFile(filepath.Join(m.Path(), "dovecot-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(ul)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "3 V") || lines[1] != "1 :"+d.Key {
		t.Fatalf("dovecot-uidlist:\n%s", ul)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestFlagsAndKeywords(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	deliver(t, s, m, "INBOX", msg("a", 100))
	deliver(t, s, m, "INBOX", msg("b", 100))
	in := folder(t, m, "INBOX")
	snapshot(t, in)
	got, err := in.StoreFlags(ctx, []uint32{1, 2}, FlagsAdd, []string{FlagSeen, "$Forwarded", "Work"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !slices.Equal(got[0].Flags, []string{`\Seen`, "$Forwarded", "Work"}) {
		t.Fatalf("flags %v", got)
	}
	if _, err := in.StoreFlags(ctx, []uint32{2}, FlagsSet, []string{FlagDeleted, "Work"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.StoreFlags(ctx, []uint32{1}, FlagsRemove, []string{"$Forwarded"}); err != nil {
		t.Fatal(err)
	}
	kw, _ := os.ReadFile(filepath.Join(m.Path(), "dovecot-keywords"))
	if string(kw) != "0 $Forwarded\n1 Work\n" {
		t.Fatalf("dovecot-keywords %q", kw)
	}
	cur := filesIn(t, m.Path(), "cur")
	slices.Sort(cur)
	var infos []string
	for _, n := range cur {
		infos = append(infos, n[strings.Index(n, ":2,")+3:])
	}
	slices.Sort(infos)
	if !slices.Equal(infos, []string{"Sb", "Tb"}) {
		t.Fatalf("infos %v", infos)
	}
	// A fresh store (a restart) reads the same flags from the names.
	s2 := newStoreAt(t, s.base)
	m2 := openPath(t, s2, m.Path())
	snap := snapshot(t, folder(t, m2, "INBOX"))
	if !slices.Equal(snap.Messages[0].Flags, []string{`\Seen`, "Work"}) || !slices.Equal(snap.Messages[1].Flags, []string{`\Deleted`, "Work"}) {
		t.Fatalf("after restart %+v", snap.Messages)
	}
	if _, err := in.StoreFlags(ctx, []uint32{1}, FlagsAdd, []string{"bad(kw"}); !errors.Is(err, ErrInvalidFlag) {
		t.Fatalf("bad keyword: %v", err)
	}
}

func newStoreAt(t testing.TB, base string) *Store {
	t.Helper()
	s, err := New(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPath(t testing.TB, s *Store, p string) *Maildir {
	t.Helper()
	m, err := s.Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestAppendCopyMoveExpunge(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	in := folder(t, m, "INBOX")
	date := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	uid, err := in.Append(ctx, strings.NewReader(msg("x", 200)), []string{FlagFlagged, "Todo"}, date)
	if err != nil || uid != 1 {
		t.Fatalf("append: %d %v", uid, err)
	}
	uid2, err := in.Append(ctx, strings.NewReader(msg("y", 200)), nil, time.Time{})
	if err != nil || uid2 != 2 {
		t.Fatalf("append: %d %v", uid2, err)
	}
	mm, err := in.Message(ctx, 1)
	if err != nil || !mm.InternalDate.Equal(date) || !slices.Equal(mm.Flags, []string{`\Flagged`, "Todo"}) {
		t.Fatalf("message %+v %v", mm, err)
	}
	arch := folder(t, m, "Archive")
	res, err := in.Copy(ctx, []uint32{1, 2, 99}, arch)
	if err != nil || !slices.Equal(res.Source, []uint32{1, 2}) || !slices.Equal(res.Dest, []uint32{1, 2}) {
		t.Fatalf("copy %+v %v", res, err)
	}
	am, _ := arch.Message(ctx, 1)
	if !slices.Equal(am.Flags, []string{`\Flagged`, "Todo"}) || !am.InternalDate.Equal(date) {
		t.Fatalf("copied %+v", am)
	}
	res, err = in.Move(ctx, []uint32{2}, arch)
	if err != nil || !slices.Equal(res.Dest, []uint32{3}) {
		t.Fatalf("move %+v %v", res, err)
	}
	snap := snapshot(t, in)
	if len(snap.Messages) != 1 || snap.Messages[0].UID != 1 {
		t.Fatalf("after move %+v", snap.Messages)
	}
	gone, err := arch.Expunge(ctx, []uint32{1, 3})
	if err != nil || !slices.Equal(gone, []uint32{1, 3}) {
		t.Fatalf("expunge %v %v", gone, err)
	}
	asnap := snapshot(t, arch)
	if len(asnap.Messages) != 1 || asnap.Messages[0].UID != 2 || asnap.UIDNext != 4 {
		t.Fatalf("archive %+v", asnap)
	}
	ul, _ := os.ReadFile(filepath.Join(m.Path(), ".Archive", "dovecot-uidlist"))
	if n := strings.Count(string(ul), "\n"); n != 2 {
		t.Fatalf("uidlist after expunge:\n%s", ul)
	}
	if len(filesIn(t, filepath.Join(m.Path(), ".Archive"), "cur")) != 1 {
		t.Fatal("expunged files still on disk")
	}
}

func TestFolders(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	for _, n := range []string{"Lists", "Lists.go", "Lists.go.dev", "Entwürfe"} {
		if err := m.CreateFolder(ctx, n); err != nil {
			t.Fatal(n, err)
		}
	}
	if err := m.CreateFolder(ctx, "Lists"); !errors.Is(err, ErrFolderExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m.Path(), ".Entw&APw-rfe", "cur")); err != nil {
		t.Fatal("modified UTF-7 directory missing:", err)
	}
	if err := m.Subscribe(ctx, "Lists.go", true); err != nil {
		t.Fatal(err)
	}
	if err := m.RenameFolder(ctx, "Lists", "Groups"); err != nil {
		t.Fatal(err)
	}
	fl, err := m.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fl {
		names = append(names, f.Name)
		switch f.Name {
		case "Sent":
			if f.SpecialUse != SpecialSent || !f.Subscribed {
				t.Errorf("Sent: %+v", f)
			}
		case "Groups":
			if !f.HasChildren {
				t.Errorf("Groups: %+v", f)
			}
		case "Groups.go":
			if !f.Subscribed {
				t.Errorf("subscription did not follow the rename: %+v", f)
			}
		}
	}
	want := []string{"INBOX", "Archive", "Drafts", "Entwürfe", "Groups", "Groups.go", "Groups.go.dev", "Junk", "Sent", "Trash"}
	if !slices.Equal(names, want) {
		t.Fatalf("folders %v, want %v", names, want)
	}
	subs, _ := os.ReadFile(filepath.Join(m.Path(), "subscriptions"))
	if !strings.HasPrefix(string(subs), "V\t2\n\n") || !strings.Contains(string(subs), "\nGroups\tgo\n") {
		t.Fatalf("subscriptions %q", subs)
	}
	if err := m.DeleteFolder(ctx, "Groups"); err != nil {
		t.Fatal(err)
	}
	fl, _ = m.Folders(ctx)
	for _, f := range fl {
		if f.Name == "Groups" && !f.NonExistent {
			t.Fatalf("deleted parent listed as existing: %+v", f)
		}
	}
	if err := m.DeleteFolder(ctx, "INBOX"); !errors.Is(err, ErrInbox) {
		t.Fatalf("delete INBOX: %v", err)
	}
	if _, err := m.Folder(ctx, "Groups"); !errors.Is(err, ErrNoFolder) {
		t.Fatalf("deleted folder opens: %v", err)
	}
}

func TestNameSafety(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	for _, n := range []string{"", "..", "a..b", ".a", "a.", "a/b", "../x", "#news", "a\x01b", "a\x7f", "Cafe\u0301", "~x", "a*", "\xff"} {
		if err := m.CreateFolder(ctx, n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("CreateFolder(%q) = %v", n, err)
		}
		var ne *NameError
		if _, err := s.Deliver(ctx, m.Path(), n, strings.NewReader("x"), &DeliverOptions{CreateFolder: true}); !errors.As(err, &ne) {
			t.Errorf("Deliver(%q) = %v", n, err)
		}
	}
	if got, err := CheckName("inbox.Work"); err != nil || got != "INBOX.Work" {
		t.Errorf("CheckName(inbox.Work) = %q, %v", got, err)
	}
	if _, err := s.UserPath("..", "x"); !errors.Is(err, ErrInvalidName) {
		t.Error("UserPath accepted ..")
	}
	if _, err := s.Open(ctx, "../../etc"); !errors.Is(err, ErrInvalidName) {
		t.Error("Open accepted a path leaving base")
	}
	// Invalid modified UTF-7 on disk is not listed.
	os.MkdirAll(filepath.Join(m.Path(), ".bad&AGE-", "cur"), 0o700)
	fl, _ := m.Folders(ctx)
	for _, f := range fl {
		if strings.Contains(f.Name, "bad") {
			t.Fatalf("listed %q", f.Name)
		}
	}
}

func TestOpenAfterOutsideRename(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	body := msg("r", 100)
	deliver(t, s, m, "INBOX", body)
	in := folder(t, m, "INBOX")
	snapshot(t, in)
	name := filesIn(t, m.Path(), "cur")[0]
	if err := os.Rename(filepath.Join(m.Path(), "cur", name), filepath.Join(m.Path(), "cur", name+"S")); err != nil {
		t.Fatal(err)
	}
	fh, got, err := in.Open(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(fh)
	fh.Close()
	if string(data) != body || !got.HasFlag(FlagSeen) {
		t.Fatalf("opened %q with flags %v", data, got.Flags)
	}
	if _, _, err := in.Open(ctx, 2); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("unknown UID: %v", err)
	}
}

func TestRecreatedFolderNewUIDValidity(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	var seen []uint32
	for range 3 {
		if err := m.CreateFolder(ctx, "Tmp"); err != nil {
			t.Fatal(err)
		}
		st, err := folder(t, m, "Tmp").Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(seen, st.UIDValidity) {
			t.Fatalf("UIDVALIDITY %d reused by a recreated folder", st.UIDValidity)
		}
		seen = append(seen, st.UIDValidity)
		if err := m.DeleteFolder(ctx, "Tmp"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMessages(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	for range 3 {
		deliver(t, s, m, "INBOX", msg("m", 40))
	}
	got, err := folder(t, m, "INBOX").Messages(ctx, []uint32{3, 9, 1})
	if err != nil || len(got) != 2 || got[0].UID != 3 || got[1].UID != 1 {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestStoreFlagsOnTopOfOutsideChange(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	deliver(t, s, m, "INBOX", msg("o", 60))
	in := folder(t, m, "INBOX")
	snapshot(t, in)
	// Another process flags the message; this state has not synced.
	name := filesIn(t, m.Path(), "cur")[0]
	if err := os.Rename(filepath.Join(m.Path(), "cur", name), filepath.Join(m.Path(), "cur", name+"F")); err != nil {
		t.Fatal(err)
	}
	got, err := in.StoreFlags(ctx, []uint32{1}, FlagsAdd, []string{FlagSeen})
	if err != nil || len(got) != 1 || !slices.Equal(got[0].Flags, []string{`\Flagged`, `\Seen`}) {
		t.Fatalf("%+v %v", got, err)
	}
	if cur := filesIn(t, m.Path(), "cur"); len(cur) != 1 || !strings.HasSuffix(cur[0], ":2,FS") {
		t.Fatalf("cur/ %v", cur)
	}
}

// TestOpenWithoutSync: opening a message the folder's state knows costs
// no sync (no stat of its directories); a file another process renamed
// since (a flag change) is found by one rescan and opened, and a file
// removed meanwhile is ErrNoMessage.
func TestOpenWithoutSync(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	bodies := []string{msg("one", 100), msg("two", 120), msg("three", 140)}
	for _, b := range bodies[:2] {
		deliver(t, s, m, "INBOX", b)
	}
	in := folder(t, m, "INBOX")
	snapshot(t, in) // moves both to cur/
	deliver(t, s, m, "INBOX", bodies[2])
	other := newStoreAt(t, s.base) // stands for another process
	om := openPath(t, other, m.Path())
	snapshot(t, folder(t, om, "INBOX")) // it sees message 3, moves it to cur/
	snapshot(t, in)                     // this state knows all three in cur/
	syncs := func() int {
		in.st.mu.Lock()
		defer in.st.mu.Unlock()
		return in.st.syncs
	}
	open := func(uid uint32, want string) Message {
		t.Helper()
		fh, got, err := in.Open(ctx, uid)
		if err != nil {
			t.Fatalf("open %d: %v", uid, err)
		}
		defer fh.Close()
		data, _ := io.ReadAll(fh)
		if string(data) != want {
			t.Fatalf("open %d: %q", uid, data)
		}
		return got
	}
	n := syncs()
	for range 3 {
		for uid := uint32(1); uid <= 3; uid++ {
			open(uid, bodies[uid-1])
		}
	}
	if got := syncs(); got != n {
		t.Fatalf("%d syncs for opening known messages", got-n)
	}
	// Another process flags message 2: its file has a new name.
	if _, err := folder(t, om, "INBOX").StoreFlags(ctx, []uint32{2}, FlagsAdd, []string{FlagFlagged}); err != nil {
		t.Fatal(err)
	}
	if got := open(2, bodies[1]); !got.HasFlag(FlagFlagged) {
		t.Fatalf("flags %v after the outside change", got.Flags)
	}
	if got := syncs(); got != n+1 {
		t.Fatalf("%d syncs to find a renamed file, want 1", got-n)
	}
	// Another process expunges message 1.
	if _, err := folder(t, om, "INBOX").Expunge(ctx, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := in.Open(ctx, 1); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("open of an expunged message: %v", err)
	}
	n = syncs()
	open(3, bodies[2])
	if got := syncs(); got != n {
		t.Fatalf("%d syncs after the rescan", got-n)
	}
}

// TestRecentClaimedOnce: a delivered, an appended and a copied message
// are Recent in every Snapshot until ClaimRecent hands them out, once.
func TestRecentClaimedOnce(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	deliver(t, s, m, "INBOX", msg("one", 100))
	in := folder(t, m, "INBOX")
	if _, err := in.Append(ctx, strings.NewReader(msg("two", 100)), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		snap := snapshot(t, in)
		if len(snap.Messages) != 2 || !snap.Messages[0].Recent || !snap.Messages[1].Recent {
			t.Fatalf("snapshot %+v", snap.Messages)
		}
	}
	if st, err := in.Status(ctx); err != nil || st.Recent != 2 {
		t.Fatalf("status %+v %v", st, err)
	}
	got, err := in.ClaimRecent(ctx)
	if err != nil || !slices.Equal(got, []uint32{1, 2}) {
		t.Fatalf("claimed %v %v", got, err)
	}
	if got, err := in.ClaimRecent(ctx); err != nil || len(got) != 0 {
		t.Fatalf("claimed again %v %v", got, err)
	}
	if snap := snapshot(t, in); snap.Messages[0].Recent || snap.Messages[1].Recent {
		t.Fatalf("still recent after the claim: %+v", snap.Messages)
	}
	dest := folder(t, m, "Archive")
	if _, err := in.Copy(ctx, []uint32{1}, dest); err != nil {
		t.Fatal(err)
	}
	if got, err := dest.ClaimRecent(ctx); err != nil || !slices.Equal(got, []uint32{1}) {
		t.Fatalf("copy claimed %v %v", got, err)
	}
}

// TestSelectMatchesSnapshot: Select gives the UIDs, first unseen
// message, keywords, MAILBOXID and modseq a Snapshot and Status give, and
// claims Recent as ClaimRecent does, only when asked to.
func TestSelectMatchesSnapshot(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	in := folder(t, m, "INBOX")
	for i := range 4 {
		if _, err := in.Append(ctx, strings.NewReader(msg("m"+strconv.Itoa(i), 100)), []string{FlagSeen}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.StoreFlags(ctx, []uint32{3}, FlagsRemove, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.StoreFlags(ctx, []uint32{4}, FlagsAdd, []string{"Project_X"}); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Expunge(ctx, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, in)
	st, err := in.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := in.Select(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var uids []uint32
	for _, msg := range snap.Messages {
		uids = append(uids, msg.UID)
	}
	if !slices.Equal(sel.UIDs, uids) || !slices.Equal(sel.UIDs, []uint32{2, 3, 4}) || sel.FirstUnseen != 2 ||
		sel.UIDValidity != snap.UIDValidity || sel.UIDNext != snap.UIDNext || sel.HighestModSeq != snap.HighestModSeq ||
		!slices.Equal(sel.Keywords, snap.Keywords) || !slices.Equal(sel.Keywords, []string{"Project_X"}) ||
		sel.MailboxID == "" || sel.MailboxID != st.MailboxID {
		t.Fatalf("Select %+v, Snapshot %+v, Status %+v", sel, snap, st)
	}
	if !slices.Equal(sel.Recent, []uint32{2, 3, 4}) {
		t.Fatalf("recent %v", sel.Recent)
	}
	// Without claim, Recent stays for the next caller; with it, once.
	for _, want := range [][]uint32{{2, 3, 4}, nil} {
		sel, err := in.Select(ctx, true)
		if err != nil || !slices.Equal(sel.Recent, want) {
			t.Fatalf("claimed %v %v, want %v", sel.Recent, err, want)
		}
	}
	if got, err := in.ClaimRecent(ctx); err != nil || len(got) != 0 {
		t.Fatalf("claimed after Select %v %v", got, err)
	}
	if _, err := in.StoreFlags(ctx, []uint32{3}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	if sel, err := in.Select(ctx, false); err != nil || sel.FirstUnseen != 0 {
		t.Fatalf("all seen: %+v %v", sel, err)
	}
}

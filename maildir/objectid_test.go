package maildir

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// EMAILID stays with a message through flag changes, a move, a copy and
// a restart; MAILBOXID stays with a folder through a rename (RFC 8474);
// SAVEDATE is when the message entered the folder (RFC 8514).
func TestObjectIDs(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	s := newStoreAt(t, base)
	m := openUser(t, s)
	deliver(t, s, m, "INBOX", msg("a", 100))
	deliver(t, s, m, "INBOX", msg("b", 100))
	in := folder(t, m, "INBOX")
	snap := snapshot(t, in)
	id1, id2 := snap.Messages[0].EmailID, snap.Messages[1].EmailID
	if id1 == "" || id1 == id2 || snap.Messages[0].SaveDate == 0 {
		t.Fatalf("ids %q %q, save date %d", id1, id2, snap.Messages[0].SaveDate)
	}
	out, _ := in.StoreFlags(ctx, []uint32{1}, FlagsAdd, []string{FlagSeen})
	if out[0].EmailID != id1 {
		t.Fatalf("flag change: %q, was %q", out[0].EmailID, id1)
	}
	if err := m.CreateFolder(ctx, "Keep"); err != nil {
		t.Fatal(err)
	}
	arch := folder(t, m, "Keep")
	st0, _ := arch.Status(ctx)
	if _, err := in.Copy(ctx, []uint32{1}, arch); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Move(ctx, []uint32{2}, arch); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, arch)
	if len(got.Messages) != 2 || got.Messages[0].EmailID != id1 || got.Messages[1].EmailID != id2 {
		t.Fatalf("after copy and move: %+v", got.Messages)
	}
	st1, _ := arch.Status(ctx)
	inSt, _ := in.Status(ctx)
	if st1.MailboxID == "" || st1.MailboxID == inSt.MailboxID || st0.MailboxID != "" && st0.MailboxID != st1.MailboxID {
		t.Fatalf("MAILBOXIDs %q %q %q", st0.MailboxID, st1.MailboxID, inSt.MailboxID)
	}
	if err := m.RenameFolder(ctx, "Keep", "Old"); err != nil {
		t.Fatal(err)
	}
	old := folder(t, m, "Old")
	st2, _ := old.Status(ctx)
	if st2.MailboxID != st1.MailboxID {
		t.Fatalf("MAILBOXID after rename %q, was %q", st2.MailboxID, st1.MailboxID)
	}
	m.Close()
	s.Close()
	s2 := newStoreAt(t, base)
	m2 := openUser(t, s2)
	again := snapshot(t, folder(t, m2, "Old"))
	if !slices.EqualFunc(again.Messages, got.Messages, func(a, b Message) bool { return a.EmailID == b.EmailID && a.SaveDate == b.SaveDate }) {
		t.Fatalf("after restart: %+v, was %+v", again.Messages, got.Messages)
	}
}

// A file moved between cur/ and new/ by someone else gets a new modseq.
func TestModSeqOutsideMoveToNew(t *testing.T) {
	ctx := context.Background()
	in, h0 := twoMessages(t)
	name := fileOf(t, in, 1)
	if err := os.Rename(filepath.Join(in.st.dir, "cur", name), filepath.Join(in.st.dir, "new", name)); err != nil {
		t.Fatal(err)
	}
	if err := in.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if ch, _ := in.ChangedSince(ctx, h0); !slices.Equal(uidsOf(ch), []uint32{1}) {
		t.Fatalf("after a move to new/: %v", uidsOf(ch))
	}
}

package maildir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailagent/mailagent/internal/interop/dovecottest"
)

// dovecotConfig adds to dovecottest's configuration what the Maildir
// test compares: the special-use folders and Maildir++ quota.
const dovecotConfig = `mail_plugins = quota
namespace inbox {
  mailbox Sent {
    special_use = \Sent
  }
  mailbox Drafts {
    special_use = \Drafts
  }
  mailbox Trash {
    special_use = \Trash
  }
  mailbox Junk {
    special_use = \Junk
  }
  mailbox Archive {
    special_use = \Archive
  }
}
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=10240K:messages=100
}
`

// checkOwner fails for any file or directory under root not owned by uid.
func checkOwner(t *testing.T, root string, uid int) {
	t.Helper()
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
			t.Errorf("%s belongs to uid %d, not the mail user %d", p, st.Uid, uid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type imapMsg struct {
	uid   uint32
	flags []string
	size  int64
	date  time.Time
}

func fetchAll(t *testing.T, c *imapclient.Client, mailbox string) (*imap.SelectData, []imapMsg) {
	t.Helper()
	sel, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		t.Fatalf("SELECT %s: %v", mailbox, err)
	}
	if sel.NumMessages == 0 {
		return sel, nil
	}
	var set imap.SeqSet
	set.AddRange(1, 0)
	bufs, err := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true}).Collect()
	if err != nil {
		t.Fatalf("FETCH %s: %v", mailbox, err)
	}
	var out []imapMsg
	for _, b := range bufs {
		var fl []string
		for _, f := range b.Flags {
			if f != `\Recent` {
				fl = append(fl, string(f))
			}
		}
		sortFlags(fl)
		out = append(out, imapMsg{uid: uint32(b.UID), flags: fl, size: b.RFC822Size, date: b.InternalDate})
	}
	return sel, out
}

func TestDovecotInterop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Dovecot's mail processes run as nobody and serve
	// Root/mail/<domain>/<user>/Maildir.
	dove := dovecottest.Start(t, dovecottest.Options{
		Protocols: []string{"imap"},
		Users:     map[string]string{"alice@example.org": "secret"},
		Config:    dovecotConfig,
	})
	root, addr, uid := dove.Root, dove.IMAP, dove.UID

	// 1. mailagent writes folders, messages, flags, keywords and quota.
	// The base belongs to the mail user; mailagent, running as root here,
	// must create everything below it with that owner for Dovecot.
	if err := os.Mkdir(filepath.Join(root, "mail"), 0o700); err != nil {
		t.Fatal(err)
	}
	dove.ChownTree(t, filepath.Join(root, "mail"))
	s, err := New(filepath.Join(root, "mail"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, _ := s.UserPath("example.org", "alice")
	m := openPath(t, s, p)
	for _, n := range []string{"Lists", "Lists.go", "Entwürfe"} {
		if err := m.CreateFolder(ctx, n); err != nil {
			t.Fatal(err)
		}
		if err := m.Subscribe(ctx, n, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.SetQuota(ctx, Quota{Bytes: 10240 * 1024, Messages: 100}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.Deliver(ctx, p, "INBOX", strings.NewReader(msg(fmt.Sprint("m", i), 500+i*100)), nil); err != nil {
			t.Fatal(err)
		}
	}
	in := folder(t, m, "INBOX")
	snapshot(t, in)
	if _, err := in.StoreFlags(ctx, []uint32{2}, FlagsAdd, []string{FlagSeen, FlagAnswered, "$Label1"}); err != nil {
		t.Fatal(err)
	}
	lg := folder(t, m, "Lists.go")
	date := time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC)
	if _, err := lg.Append(ctx, strings.NewReader(msg("go", 800)), []string{FlagFlagged, "Work", "$Forwarded"}, date); err != nil {
		t.Fatal(err)
	}
	ours := map[string]*Snapshot{}
	for _, n := range []string{"INBOX", "Lists.go", "Entwürfe"} {
		ours[n] = snapshot(t, folder(t, m, n))
	}
	usage, err := m.Quota(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkOwner(t, filepath.Join(root, "mail"), uid)

	// 2. Dovecot serves the same folders, UIDs, flags, keywords and quota.
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.org", "secret").Wait(); err != nil {
		t.Fatal(err)
	}
	lists, err := c.List("", "*", &imap.ListOptions{ReturnSubscribed: true, ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*imap.ListData{}
	for _, l := range lists {
		got[l.Mailbox] = l
	}
	for _, want := range []string{"INBOX", "Lists", "Lists.go", "Entwürfe", "Sent", "Trash", "Drafts", "Junk", "Archive"} {
		l := got[want]
		if l == nil {
			t.Fatalf("Dovecot does not list %q (lists %v)", want, lists)
		}
		sub := slices.Contains(l.Attrs, imap.MailboxAttrSubscribed)
		if want != "INBOX" && !sub {
			t.Errorf("Dovecot: %q not subscribed: %v", want, l.Attrs)
		}
	}
	for name, snap := range ours {
		sel, msgs := fetchAll(t, c, name)
		if sel.UIDValidity != snap.UIDValidity || uint32(sel.UIDNext) != snap.UIDNext {
			t.Errorf("%s: Dovecot UIDVALIDITY %d UIDNEXT %d, mailagent %d %d", name, sel.UIDValidity, sel.UIDNext, snap.UIDValidity, snap.UIDNext)
		}
		if len(msgs) != len(snap.Messages) {
			t.Fatalf("%s: Dovecot has %d messages, mailagent %d", name, len(msgs), len(snap.Messages))
		}
		for i, dm := range msgs {
			om := snap.Messages[i]
			if dm.uid != om.UID || !slices.Equal(dm.flags, om.Flags) || dm.size != om.VSize || !dm.date.Equal(om.InternalDate.Truncate(time.Second)) {
				t.Errorf("%s: Dovecot %+v, mailagent %+v", name, dm, om)
			}
		}
	}
	qr, err := c.GetQuotaRoot("INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	var storage, count int64 = -1, -1
	for _, q := range qr {
		if r, ok := q.Resources[imap.QuotaResourceStorage]; ok {
			storage = r.Usage
		}
		if r, ok := q.Resources[imap.QuotaResourceMessage]; ok {
			count = r.Usage
		}
	}
	if storage != (usage.Bytes+1023)/1024 || count != usage.Messages {
		t.Errorf("Dovecot quota %d KiB/%d messages, mailagent %d bytes/%d", storage, count, usage.Bytes, usage.Messages)
	}

	// 3. Dovecot appends, flags, expunges and creates; mailagent reads it,
	// and a watcher learns of it without being asked.
	// Their modseqs come after every one mailagent gave before.
	before := highest(t, in)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	events, err := in.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	body := "Subject: from dovecot\r\n\r\nhello\r\n"
	ap := c.Append("INBOX", int64(len(body)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen, "Dove"}})
	ap.Write([]byte(body))
	ap.Close()
	apd, err := ap.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var one imap.UIDSet
	one.AddNum(1)
	if err := c.Store(one, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "Work"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	var three imap.UIDSet
	three.AddNum(3)
	if err := c.Store(three, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.UIDExpunge(three).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Neu.Ordner", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// A folder Dovecot creates and fills alone: mailagent must read its
	// UIDVALIDITY, UIDs, flags and keywords as Dovecot serves them.
	for i, fl := range [][]imap.Flag{{imap.FlagAnswered, "Alpha"}, {"Beta", imap.FlagDraft}} {
		b := fmt.Sprintf("Subject: dovecot %d\r\n\r\nbody\r\n", i)
		a := c.Append("Neu.Ordner", int64(len(b)), &imap.AppendOptions{Flags: fl})
		a.Write([]byte(b))
		a.Close()
		if _, err := a.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	neuSel, neuMsgs := fetchAll(t, c, "Neu.Ordner")
	if err := c.Create("Ünïcödé", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("Ünïcödé").Wait(); err != nil {
		t.Fatal(err)
	}
	_, dmsgs := fetchAll(t, c, "INBOX")
	c.Logout().Wait()

	deadline := time.After(3 * time.Second)
	for sawNew := false; !sawNew; {
		select {
		case ev := <-events:
			sawNew = ev.Kind == EventNew && slices.Contains(ev.UIDs, uint32(apd.UID)) || ev.Kind == EventReset
		case <-deadline:
			t.Fatal("the watcher did not learn of Dovecot's APPEND within 3 s")
		}
	}

	if err := in.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, in)
	if len(snap.Messages) != len(dmsgs) {
		t.Fatalf("mailagent sees %d messages, Dovecot %d", len(snap.Messages), len(dmsgs))
	}
	for i, dm := range dmsgs {
		om := snap.Messages[i]
		if dm.uid != om.UID || !slices.Equal(dm.flags, om.Flags) || dm.size != om.VSize {
			t.Errorf("after Dovecot's changes: Dovecot %+v, mailagent %+v", dm, om)
		}
	}
	if last := snap.Messages[len(snap.Messages)-1]; last.UID != uint32(apd.UID) || !slices.Equal(last.Flags, []string{`\Seen`, "Dove"}) {
		t.Errorf("appended by Dovecot: UID %d flags %v, APPENDUID %d", last.UID, last.Flags, apd.UID)
	}
	changed, err := in.ChangedSince(ctx, before)
	if err != nil || !slices.Equal(uidsOf(changed), []uint32{1, uint32(apd.UID)}) {
		t.Errorf("changed since Dovecot's session began: %v %v, want 1 (flagged) and %d (appended)", uidsOf(changed), err, apd.UID)
	}
	if gone, _, err := in.ExpungedSince(ctx, before); err != nil || !slices.Equal(gone, []uint32{3}) {
		t.Errorf("expunged since Dovecot's session began: %v %v", gone, err)
	}
	// A fresh store (another process, or a restart) agrees.
	s2 := newStoreAt(t, filepath.Join(root, "mail"))
	m2 := openPath(t, s2, p)
	snap2 := snapshot(t, folder(t, m2, "INBOX"))
	if len(snap2.Messages) != len(snap.Messages) || snap2.UIDValidity != snap.UIDValidity || snap2.UIDNext != snap.UIDNext ||
		snap2.HighestModSeq != snap.HighestModSeq {
		t.Errorf("fresh store: %+v vs %+v", snap2, snap)
	}
	for i := range snap2.Messages {
		if i < len(snap.Messages) && snap2.Messages[i].ModSeq != snap.Messages[i].ModSeq {
			t.Errorf("fresh store: UID %d modseq %d, first store %d", snap2.Messages[i].UID, snap2.Messages[i].ModSeq, snap.Messages[i].ModSeq)
		}
	}
	fl, err := m2.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]FolderInfo{}
	for _, f := range fl {
		have[f.Name] = f
	}
	if _, ok := have["Neu.Ordner"]; !ok {
		t.Errorf("folder created by Dovecot missing: %v", fl)
	}
	neu := snapshot(t, folder(t, m2, "Neu.Ordner"))
	if neu.UIDValidity != neuSel.UIDValidity || neu.UIDNext != uint32(neuSel.UIDNext) || len(neu.Messages) != len(neuMsgs) {
		t.Fatalf("Dovecot's folder: mailagent %+v, Dovecot %+v", neu, neuSel)
	}
	for i, dm := range neuMsgs {
		om := neu.Messages[i]
		if dm.uid != om.UID || !slices.Equal(dm.flags, om.Flags) || dm.size != om.VSize || !dm.date.Equal(om.InternalDate.Truncate(time.Second)) {
			t.Errorf("Dovecot's folder: Dovecot %+v, mailagent %+v", dm, om)
		}
	}
	if f, ok := have["Ünïcödé"]; !ok || !f.Subscribed {
		t.Errorf("Dovecot's Ünïcödé: %+v (folders %v)", f, fl)
	}
}

package imap

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailagent/mailagent/maildir"
)

// TestIdleSeesOtherNode serves IMAP from one maildir.Store with its
// file-system watcher off, as a node on NFS where inotify cannot see
// other nodes' writes, and delivers through a second Store on the same
// tree (the other node): the IDLE session gets the EXISTS from the poll,
// within a deadline, and the new message's UID is the one the other node
// sees.
func TestIdleSeesOtherNode(t *testing.T) {
	st := newTestStack(t)
	const interval = 50 * time.Millisecond
	node := func(host string) *maildir.Store {
		md, err := maildir.New(filepath.Join(st.dir, "mail"), &maildir.Options{Hostname: host, NoWatcher: true, PollInterval: interval})
		must(t, err)
		t.Cleanup(func() { md.Close() })
		return md
	}
	a, b := node("node-a"), node("node-b")
	opts := st.options()
	opts.Store = a
	_, addr := st.serve(opts)

	c, exists := dialCounting(t, addr)
	defer c.Close()
	must(t, c.Login("alice@local.example", testPassword).Wait())
	sel, err := c.Select("INBOX", nil).Wait()
	must(t, err)
	if sel.NumMessages != 0 {
		t.Fatalf("INBOX starts with %d messages", sel.NumMessages)
	}
	idle, err := c.Idle()
	must(t, err)

	ctx := context.Background()
	path, err := b.UserPath("local.example", "alice")
	must(t, err)
	for want := uint32(1); want <= 2; want++ {
		start := time.Now()
		_, err = b.Deliver(ctx, path, "INBOX", strings.NewReader(testMessage), nil)
		must(t, err)
		select {
		case n := <-exists:
			if n != want {
				t.Fatalf("EXISTS %d, want %d", n, want)
			}
			t.Logf("EXISTS %d after %v (poll interval %v)", n, time.Since(start), interval)
		case <-time.After(10 * time.Second):
			t.Fatalf("no EXISTS %d during IDLE within 10s", want)
		}
	}
	must(t, idle.Close())
	must(t, idle.Wait())

	// Both nodes give the messages the same UIDs.
	mb, err := b.Open(ctx, path)
	must(t, err)
	defer mb.Close()
	fb, err := mb.Folder(ctx, "INBOX")
	must(t, err)
	snap, err := fb.Snapshot(ctx)
	must(t, err)
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{UID: true}).Collect()
	must(t, err)
	if len(msgs) != 2 || len(snap.Messages) != 2 {
		t.Fatalf("IMAP lists %d messages, node b %d", len(msgs), len(snap.Messages))
	}
	for i, m := range msgs {
		if uint32(m.UID) != snap.Messages[i].UID {
			t.Errorf("message %d: UID %d over IMAP, %d on node b", i+1, m.UID, snap.Messages[i].UID)
		}
	}
	must(t, c.Logout().Wait())
}

// dialCounting connects go-imap's client to addr and returns it with a
// channel of the message counts the server's EXISTS responses announce.
func dialCounting(t *testing.T, addr string) (*imapclient.Client, <-chan uint32) {
	t.Helper()
	exists := make(chan uint32, 10)
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		},
	})
	must(t, err)
	return c, exists
}

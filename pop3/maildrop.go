package pop3

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailagent/mailagent/maildir"
)

// errInUse is returned by openMaildrop when another session, in this
// process or another, holds the maildrop.
var errInUse = errors.New("pop3: maildrop in use")

// maildrop is a user's INBOX as one POP3 session sees it: a snapshot
// taken at login, numbered 1..n, with the session's deletion marks and
// the messages it retrieved. The maildrop stays locked until close.
type maildrop struct {
	md          *maildir.Maildir
	folder      *maildir.Folder
	unlock      func()
	uidValidity uint32
	msgs        []maildir.Message
	deleted     []bool
	retrieved   []bool
	nDeleted    int
	sizeDeleted int64
	size        int64 // of all messages, deleted or not
}

// openMaildrop opens the Maildir at path, takes its session lock and
// snapshots INBOX (which moves new/ to cur/, as Dovecot does when a POP3
// session opens the mailbox).
func openMaildrop(ctx context.Context, st *maildir.Store, path string) (*maildrop, error) {
	md, err := st.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	unlock, err := md.TryLock()
	if err != nil {
		md.Close()
		if errors.Is(err, maildir.ErrLocked) {
			return nil, errInUse
		}
		return nil, err
	}
	d := &maildrop{md: md, unlock: unlock}
	if err := d.load(ctx); err != nil {
		unlock()
		md.Close()
		return nil, err
	}
	return d, nil
}

func (d *maildrop) load(ctx context.Context) error {
	f, err := d.md.Folder(ctx, "INBOX")
	if err != nil {
		return err
	}
	snap, err := f.Snapshot(ctx)
	if err != nil {
		return err
	}
	d.folder = f
	d.uidValidity = snap.UIDValidity
	d.msgs = snap.Messages
	d.deleted = make([]bool, len(d.msgs))
	d.retrieved = make([]bool, len(d.msgs))
	for i := range d.msgs {
		d.size += d.msgs[i].VSize
	}
	return nil
}

// count and octets are STAT's figures: the messages not marked deleted.
func (d *maildrop) count() int    { return len(d.msgs) - d.nDeleted }
func (d *maildrop) octets() int64 { return d.size - d.sizeDeleted }

// message returns message number n (1-based), or an error when it is out
// of range or marked deleted.
func (d *maildrop) message(n int) (*maildir.Message, error) {
	if n < 1 || n > len(d.msgs) {
		return nil, errNoMessage
	}
	if d.deleted[n-1] {
		return nil, errMessageDeleted
	}
	return &d.msgs[n-1], nil
}

var errMessageDeleted = errors.New("message is deleted")

func (d *maildrop) markDeleted(n int) {
	d.deleted[n-1] = true
	d.nDeleted++
	d.sizeDeleted += d.msgs[n-1].VSize
}

// reset is RSET: every deletion mark is removed.
func (d *maildrop) reset() {
	clear(d.deleted)
	d.nDeleted, d.sizeDeleted = 0, 0
}

// markSeen sets \Seen on the retrieved messages not marked deleted that
// do not have it yet. Dovecot does this however the session ends.
func (d *maildrop) markSeen(ctx context.Context) error {
	var uids []uint32
	for i := range d.msgs {
		if d.retrieved[i] && !d.deleted[i] && !d.msgs[i].HasFlag(maildir.FlagSeen) {
			uids = append(uids, d.msgs[i].UID)
		}
	}
	if len(uids) == 0 {
		return nil
	}
	_, err := d.folder.StoreFlags(ctx, uids, maildir.FlagsAdd, []string{maildir.FlagSeen})
	return err
}

// update is the UPDATE state: the messages marked deleted are removed.
// It reports how many could not be (a failure of the store; messages
// another session removed meanwhile count as removed).
func (d *maildrop) update(ctx context.Context) error {
	if d.nDeleted == 0 {
		return nil
	}
	uids := make([]uint32, 0, d.nDeleted)
	for i := range d.msgs {
		if d.deleted[i] {
			uids = append(uids, d.msgs[i].UID)
		}
	}
	if _, err := d.folder.Expunge(ctx, uids); err != nil {
		return fmt.Errorf("expunging %d messages: %w", len(uids), err)
	}
	return nil
}

// close releases the lock and the Maildir.
func (d *maildrop) close() {
	d.unlock()
	d.md.Close()
}

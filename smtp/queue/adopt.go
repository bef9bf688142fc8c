package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mailagent/mailagent/internal/safeio"
)

// Several nodes may each run a queue on a spool of their own, the
// spools on storage they share. A queue owns its spool by the flock of
// the spool's lock file (lock.go); a spool whose lock is free has no
// running queue, its node having died or stopped. A queue given the
// other nodes' spools (Options.Peers) tries their locks now and then
// and moves the messages of a free one into its own spool, where they
// are delivered as its own: no acknowledged message waits for a dead
// node to come back.
//
// Each message is written whole into this spool, body then metadata,
// each fsynced, before it leaves the other: a crash in between leaves
// it in both spools (delivered twice, never lost), and a message found
// already here is only removed there. A message whose delivery the
// dead node had begun is delivered again to the recipients its
// metadata still lists, which is the duplicate RFC 1047 describes: the
// other side accepted it, the reply was not recorded.

// DefaultAdoptInterval is how often Run tries the peers' spools when
// Options.AdoptInterval is 0.
const DefaultAdoptInterval = 10 * time.Second

// Adopt tries the lock of every spool in Options.Peers once and moves
// the messages of each spool whose lock is free into this queue's
// spool, each due at once (the backoff was the other node's). It returns the
// number of messages moved. A peer directory that does not exist (not
// mounted, its node never started) is skipped; a message whose files
// cannot be read is left where it is and logged. Run calls Adopt every
// Options.AdoptInterval.
func (q *Queue) Adopt(ctx context.Context) (int, error) {
	total := 0
	var errs []error
	for _, dir := range q.opts.Peers {
		if q.down.Load() {
			return total, ErrClosed
		}
		if filepath.Clean(dir) == filepath.Clean(q.opts.Dir) {
			continue
		}
		n, err := q.adoptSpool(ctx, dir)
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("queue: adopting %s: %w", dir, err))
		}
	}
	return total, errors.Join(errs...)
}

// adoptSpool moves the messages of the spool in dir, if its lock is
// free, into q's.
func (q *Queue) adoptSpool(ctx context.Context, dir string) (int, error) {
	if _, err := os.Stat(filepath.Join(dir, msgDir)); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	lock, err := tryLockSpool(dir)
	if errors.Is(err, ErrLocked) {
		return 0, nil // its queue runs
	}
	if err != nil {
		return 0, err
	}
	defer lock.Close()
	peer := spool{dir: dir}
	// The lock makes this queue the spool's owner for now: clean up
	// after its crash as its own New would.
	if err := peer.init(); err != nil {
		return 0, err
	}
	var ids []string
	if err := peer.scan(true, func(id string) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if q.down.Load() {
			return n, ErrClosed
		}
		moved, err := q.adoptMessage(&peer, id)
		if err != nil {
			q.log.Error("queue: message of another node's spool left there", "spool", dir, "id", id, "err", err)
			continue
		}
		if moved {
			n++
		}
	}
	if n > 0 {
		q.log.Warn("queue: adopted another node's spool", "spool", dir, "messages", n)
		q.Wake()
	}
	return n, nil
}

// adoptMessage moves message id from peer into q's spool and schedules
// it; moved is false when it was here already (a crashed adoption).
func (q *Queue) adoptMessage(peer *spool, id string) (moved bool, err error) {
	m, err := peer.readMeta(id)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(q.spool.metaPath(id)); err == nil {
		return false, peer.removeSynced(id)
	}
	// Due now: the backoff was the other node's, whose failures may
	// have been its own (its network, its address's reputation).
	m.NextAttempt = q.opts.now()
	if err := q.copyBody(peer.bodyPath(id), id); err != nil {
		return false, err
	}
	if err := q.spool.writeMeta(m); err != nil {
		q.spool.remove(id)
		return false, err
	}
	if err := peer.removeSynced(id); err != nil {
		// Queued here now; the copy there is delivered again only if
		// that node's queue starts before a later adoption removes it.
		q.log.Error("queue: adopted message not removed from the other spool", "spool", peer.dir, "id", id, "err", err)
	}
	if !m.Held {
		q.mu.Lock()
		q.sched.set(id, m.NextAttempt)
		q.mu.Unlock()
	}
	return true, nil
}

// copyBody copies the message file src to id's body in q's spool,
// through tmp/ and fsynced; the rename becomes durable with the
// metadata's directory fsync, as in Commit.
func (q *Queue) copyBody(src, id string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := q.spool.createTemp("adopt")
	if err != nil {
		return err
	}
	_, err = io.Copy(f, in)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), q.spool.bodyPath(id))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// removeSynced removes message id and makes the removal durable.
func (s *spool) removeSynced(id string) error {
	if err := s.remove(id); err != nil {
		return err
	}
	return safeio.SyncDir(s.path(msgDir))
}

// adoptLoop calls Adopt every interval until ctx ends.
func (q *Queue) adoptLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := q.Adopt(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
			q.log.Error("queue: adopting other nodes' spools", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

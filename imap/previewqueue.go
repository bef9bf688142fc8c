package imap

import (
	"context"
	"io"
	"os"
	"sync"

	"github.com/mailagent/mailagent/maildir"
)

// PREVIEW (LAZY) (RFC 8970 section 3.1) answers NIL for a preview not
// made yet and asks for it to be made in the background, so that a later
// FETCH finds it in the folder's cache. One small pool serves the whole
// server: previewWorkers goroutines, started with the first request and
// stopped by Close, over a queue of at most previewQueueLen messages; a
// request that finds the queue full is dropped (the next lazy FETCH of
// that message asks again), and one already queued is not queued twice.

const (
	previewWorkers  = 2
	previewQueueLen = 1024
)

// previewJob is one message whose preview is to be made.
type previewJob struct {
	key    mailboxKey
	folder *maildir.Folder
	uid    uint32
}

type previewJobKey struct {
	mb  mailboxKey
	uid uint32
}

// previewQueue is the server's background preview pool.
type previewQueue struct {
	mu      sync.Mutex
	jobs    chan previewJob
	pending map[previewJobKey]struct{}
	closed  bool
	wg      sync.WaitGroup

	// done, when set (tests), is called after each job with its UID
	// and whether a preview was made and cached.
	done func(uid uint32, ok bool)
}

// requestPreview queues the making of message uid's preview; it never
// blocks.
func (s *Server) requestPreview(key mailboxKey, f *maildir.Folder, uid uint32) {
	q := &s.previews
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	k := previewJobKey{key, uid}
	if _, ok := q.pending[k]; ok {
		return
	}
	if q.jobs == nil {
		q.jobs = make(chan previewJob, previewQueueLen)
		q.pending = map[previewJobKey]struct{}{}
		for range previewWorkers {
			q.wg.Add(1)
			go s.previewWorker(q.jobs)
		}
	}
	select {
	case q.jobs <- previewJob{key: key, folder: f, uid: uid}:
		q.pending[k] = struct{}{}
	default: // full: dropped
	}
}

// previewWorker makes the previews queued until the server closes.
func (s *Server) previewWorker(jobs <-chan previewJob) {
	q := &s.previews
	defer q.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case j := <-jobs:
			ok := s.makePreview(j)
			q.mu.Lock()
			delete(q.pending, previewJobKey{j.key, j.uid})
			done := q.done
			q.mu.Unlock()
			if done != nil {
				done(j.uid, ok)
			}
		}
	}
}

// makePreview makes and caches one message's preview, unless the cache
// has it already; ok reports that the cache has it now. A message
// expunged meanwhile, or a Maildir closed, has none.
func (s *Server) makePreview(j previewJob) (ok bool) {
	fh, m, err := j.folder.Open(s.ctx, j.uid)
	if err != nil {
		return false
	}
	defer fh.Close()
	release := func() {}
	defer func() { release() }()
	read := func() (io.ReadSeeker, error) {
		var src io.ReadSeeker
		var err error
		src, _, release, err = messageSource(&s.msgBufs, fh, &m)
		return src, err
	}
	_, ok, err = cachedPreview(s.ctx, j.folder, j.uid, fh, read, false)
	if err != nil {
		s.log.Debug("imap: background preview", "uid", j.uid, "err", err)
		return false
	}
	return ok
}

// closePreviews stops the pool and waits for its workers, after the
// server's context is cancelled: none touches a Maildir afterwards.
func (s *Server) closePreviews() {
	q := &s.previews
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wg.Wait()
}

// cachedPreview is the folder-cache half of messagePreview, shared with
// the background pool.
func cachedPreview(ctx context.Context, folder *maildir.Folder, uid uint32, fh *os.File, read func() (io.ReadSeeker, error), lazy bool) (preview string, ok bool, err error) {
	_, err = folder.CachedUpdate(ctx, uid, fh, func(cached []byte) ([]byte, bool, error) {
		// A preview cached is served without decoding the structure.
		if _, p, has, valid := splitCachedMessage(cached); valid && has && cached != nil {
			preview, ok = p, true
			return cached, false, nil
		}
		cm, valid := decodeCachedMessage(cached)
		if lazy {
			return cached, false, nil
		}
		src, err := read()
		if err != nil {
			return nil, false, err
		}
		if !valid {
			tree, err := parseStructure(src)
			if err != nil {
				return nil, false, err
			}
			cm.tree = tree
		}
		cm.preview, cm.hasPreview = previewText(src, cm.tree), true
		preview, ok = cm.preview, true
		return cm.encode(), true, nil
	})
	return preview, ok, err
}

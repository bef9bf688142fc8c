package local

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mailagent/mailagent/internal/safeio"
)

// A durable LearnQueue keeps each job in a file of its own in Dir: one
// line of JSON (the user and whether the message is spam), then the
// message as it was moved. The names sort in the order the jobs came.
const learnSuffix = ".learn"

// maxLearnHead bounds the first line of a spooled job.
const maxLearnHead = 4096

// learnHead is the first line of a spooled job.
type learnHead struct {
	User string `json:"user"`
	Spam bool   `json:"spam"`
}

// spooledJob is a job in the spool and when it is tried next.
type spooledJob struct {
	name    string
	head    learnHead
	attempt int // attempts made since the queue started
	next    time.Time
}

// load reads the jobs left in the spool, oldest first, and removes the
// temporary files of writes a crash interrupted.
func (q *LearnQueue) load() ([]*spooledJob, error) {
	if err := os.MkdirAll(q.dir, 0o700); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, err
	}
	var jobs []*spooledJob
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") {
			os.Remove(filepath.Join(q.dir, name))
			continue
		}
		if !strings.HasSuffix(name, learnSuffix) || !e.Type().IsRegular() {
			continue
		}
		head, err := readLearnHead(filepath.Join(q.dir, name))
		if err != nil {
			q.log.Warn("learning job unreadable, removed", "file", name, "err", err)
			os.Remove(filepath.Join(q.dir, name))
			continue
		}
		jobs = append(jobs, &spooledJob{name: name, head: head})
	}
	slices.SortFunc(jobs, func(a, b *spooledJob) int { return strings.Compare(a.name, b.name) })
	if len(jobs) > 0 {
		q.log.Info("learning jobs found in the spool", "jobs", len(jobs))
	}
	return jobs, nil
}

// readLearnHead reads the first line of a spooled job.
func readLearnHead(path string) (learnHead, error) {
	var h learnHead
	f, err := os.Open(path)
	if err != nil {
		return h, err
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(io.LimitReader(f, maxLearnHead), maxLearnHead).ReadSlice('\n')
	if err != nil {
		return h, fmt.Errorf("no first line: %w", err)
	}
	err = json.Unmarshal(line, &h)
	return h, err
}

// openSpooled opens the message of a spooled job, after its first line.
func (q *LearnQueue) openSpooled(j *spooledJob) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(q.dir, j.name))
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, maxLearnHead)
	if _, err := br.ReadSlice('\n'); err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{br, f}, nil
}

// errLearnTooBig refuses a message larger than MaxSize.
var errLearnTooBig = errors.New("message too large to learn from")

// persist copies a submitted job into the spool.
func (q *LearnQueue) persist(job LearnJob) (*spooledJob, error) {
	if job.Done != nil {
		defer job.Done()
	}
	r, err := job.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	head := learnHead{User: job.User, Spam: job.Spam}
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(head); err != nil {
		return nil, err
	}
	if b.Len() > maxLearnHead {
		return nil, errors.New("user name too long")
	}
	// Counted before it is kept: one byte past the limit is enough to
	// know.
	n, err := b.ReadFrom(io.LimitReader(r, q.maxSize+1))
	if err != nil {
		return nil, err
	}
	if n > q.maxSize {
		return nil, errLearnTooBig
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("%020d-%s%s", time.Now().UnixNano(), hex.EncodeToString(rnd[:]), learnSuffix)
	if err := safeio.WriteFile(filepath.Join(q.dir, name), b.Bytes(), 0o600); err != nil {
		return nil, err
	}
	return &spooledJob{name: name, head: head}, nil
}

// remove forgets a job learnt or given up.
func (q *LearnQueue) remove(j *spooledJob) {
	if err := os.Remove(filepath.Join(q.dir, j.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		q.log.Warn("learning job not removed", "file", j.name, "err", err)
		return
	}
	_ = safeio.SyncDir(q.dir)
}

// runDurable is the worker of a durable queue: it copies submitted jobs
// into the spool and tries the spooled jobs that are due, each on its
// own backoff.
func (q *LearnQueue) runDurable(pending []*spooledJob) {
	defer q.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		pending = q.tryDue(pending)
		select {
		case <-q.stop:
			return
		default:
		}
		wait := time.Hour
		now := time.Now()
		for _, j := range pending {
			wait = min(wait, max(j.next.Sub(now), 0))
		}
		timer.Reset(wait)
		select {
		case <-q.stop:
			return
		case job := <-q.jobs:
			if len(pending) >= q.capacity {
				q.log.Warn("learning dropped: spool full", "user", job.User, "spam", job.Spam)
				if job.Done != nil {
					job.Done()
				}
				continue
			}
			j, err := q.persist(job)
			if err != nil {
				q.log.Warn("learning dropped: not spooled", "user", job.User, "spam", job.Spam, "err", err)
				continue
			}
			pending = append(pending, j)
		case <-timer.C:
		}
	}
}

// tryDue tries every job whose time has come and returns the jobs left.
func (q *LearnQueue) tryDue(pending []*spooledJob) []*spooledJob {
	left := pending[:0]
	for i, j := range pending {
		select {
		case <-q.stop:
			return append(left, pending[i:]...)
		default:
		}
		if time.Now().Before(j.next) {
			left = append(left, j)
			continue
		}
		j.attempt++
		err := q.try(LearnJob{User: j.head.User, Spam: j.head.Spam, Open: func() (io.ReadCloser, error) { return q.openSpooled(j) }})
		switch {
		case err == nil:
			q.log.Info("learnt", "user", j.head.User, "spam", j.head.Spam, "attempt", j.attempt)
			q.remove(j)
			continue
		case j.attempt >= q.attempts:
			q.log.Warn("learning failed, giving up", "user", j.head.User, "spam", j.head.Spam, "attempts", j.attempt, "err", err)
			q.remove(j)
			continue
		}
		q.log.Info("learning failed, will retry", "user", j.head.User, "spam", j.head.Spam, "attempt", j.attempt, "err", err)
		wait := q.backoff
		for k := 1; k < j.attempt && wait < q.maxBackoff; k++ {
			wait *= 2
		}
		j.next = time.Now().Add(min(wait, q.maxBackoff))
		left = append(left, j)
	}
	return left
}

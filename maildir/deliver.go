package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mailagent/mailagent/internal/ctxio"
)

// DeliverOptions tune one delivery. The zero value delivers into new/ with
// no flags, the current time, and the quota recorded in maildirsize.
type DeliverOptions struct {
	// Flags are IMAP flags and keywords for the message; a delivery with
	// flags goes to cur/ as Dovecot's LDA does.
	Flags []string
	// Date is the internal date (file mtime); zero means now.
	Date time.Time
	// Quota, when non-nil, is the user's limit (from the directory); it
	// is written to maildirsize when it differs from what is recorded. A
	// zero Quota (no limit in the directory) keeps the recorded limit.
	Quota *Quota
	// CreateFolder creates a missing target folder rather than failing
	// with ErrNoFolder.
	CreateFolder bool
}

// Delivered describes a message that Deliver made durable.
type Delivered struct {
	// Folder is the folder delivered to ("INBOX" for the root).
	Folder string
	// Key is the message's unique base name (without ":2," and flags).
	Key string
	// Size is the size in bytes; VSize the size with CRLF line endings.
	Size, VSize int64
}

// Deliver stores the message read from r into folder of the Maildir at
// path (absolute or relative to base), as an MDA does: written to tmp/,
// fsynced, renamed into new/ (cur/ with flags), and the directory fsynced
// (shared with concurrent deliveries, see Options.NoGroupCommit). Where
// the file system supports unnamed files (Linux's O_TMPFILE), the message
// is written to one created in new/ (cur/) instead and, once fsynced,
// linked there under its name: tmp/ is skipped with the same guarantees.
// When Deliver returns nil the message survives a crash; when it returns
// an error nothing of it is visible. Over quota it returns a *QuotaError.
//
// Deliver is Stage followed by Commit; deliveries of one message to
// several mailboxes that must succeed or fail together use Stage and
// CommitAll.
func (s *Store) Deliver(ctx context.Context, path, folder string, r io.Reader, opts *DeliverOptions) (*Delivered, error) {
	p, err := s.Stage(ctx, path, folder, r, opts)
	if err != nil {
		return nil, err
	}
	if err := CommitAll(ctx, p); err != nil {
		return nil, err
	}
	return p.Delivered(), nil
}

// CheckQuota reports whether a message of size bytes would fit the quota
// of the Maildir at path, limit being the user's (nil or zero: the one
// recorded):
// nil if it fits, a *QuotaError if not. A delivery agent asks with size 1
// before accepting a recipient (is there room at all?), as Dovecot's LMTP
// does at RCPT; the delivery itself still checks the real size. A Maildir
// that does not exist yet is empty.
func (s *Store) CheckQuota(ctx context.Context, path string, limit *Quota, size int64) error {
	root, err := s.resolve(path)
	if err != nil {
		return err
	}
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		if limit != nil && limit.exceeds(QuotaUsage{}, size) {
			return &QuotaError{Limit: *limit, Size: size}
		}
		return nil
	}
	return s.fits(ctx, root, limit, size)
}

// Staged is a message that Stage wrote completely and fsynced, and
// charged to the quota, but that has no name in the Maildir yet: no
// reader sees it and a crash leaves nothing of it visible. CommitAll
// gives it its name; Abort discards it. A Staged is used by one goroutine.
type Staged struct {
	s      *Store
	root   string   // the Maildir
	dir    string   // the folder's directory
	subDir string   // new/ or cur/ of dir
	dst    string   // the file's name in subDir, once linked
	f      *os.File // the unnamed file (O_TMPFILE), nil when through tmp/
	tmp    string   // the file in tmp/ when not unnamed
	d      Delivered
	linked bool // dst exists
	done   bool // committed or aborted
}

// maxAnonHeld bounds the unnamed files a Store keeps staged at once: each
// holds a file descriptor until it is linked, where a file in tmp/ holds
// none. Past it, Stage writes through tmp/ (same guarantees, one more
// directory entry).
const maxAnonHeld = 256

// Stage writes the message read from r for folder of the Maildir at path,
// as Deliver does, up to but not including giving it a name: the file is
// complete, fsynced, with its internal date set and its size charged to
// the quota (a *QuotaError when over). Nothing is visible until CommitAll.
// The caller must CommitAll or Abort every Staged it gets.
func (s *Store) Stage(ctx context.Context, path, folder string, r io.Reader, opts *DeliverOptions) (*Staged, error) {
	if opts == nil {
		opts = &DeliverOptions{}
	}
	root, err := s.resolve(path)
	if err != nil {
		return nil, err
	}
	name, err := CheckName(folder)
	if err != nil {
		return nil, err
	}
	dir := folderDir(root, name)
	if err := s.ensureFolder(root, dir, name, opts.CreateFolder); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var info string
	if len(opts.Flags) > 0 {
		info, err = s.infoFor(ctx, dir, opts.Flags)
		if err != nil {
			return nil, err
		}
	}
	key := s.names.next(s.opts.now())
	sub := "new"
	if len(opts.Flags) > 0 {
		sub = "cur"
	}
	p := &Staged{s: s, root: root, dir: dir, subDir: filepath.Join(dir, sub), d: Delivered{Folder: name}}
	var size, vsize int64
	ok := false
	if s.anonEnabled() {
		if s.anonHeld.Add(1) <= maxAnonHeld {
			size, vsize, ok, err = s.stageAnon(ctx, p, r, opts)
		}
		if !ok || err != nil {
			s.anonHeld.Add(-1) // held only by a staged unnamed file
		}
		if err != nil {
			return nil, err
		}
	}
	if !ok {
		if size, vsize, err = s.stageTmp(ctx, p, key, r, opts); err != nil {
			return nil, err
		}
	}
	p.d.Key = withSizes(key, size, vsize)
	p.d.Size, p.d.VSize = size, vsize
	final := p.d.Key
	if sub == "cur" {
		final += infoSep + info
	}
	p.dst = filepath.Join(p.subDir, final)
	return p, nil
}

// stageTmp writes the message to tmp/key, fsynced, and charges the
// quota; on failure nothing remains.
func (s *Store) stageTmp(ctx context.Context, p *Staged, key string, r io.Reader, opts *DeliverOptions) (size, vsize int64, err error) {
	tmp := filepath.Join(p.dir, "tmp", key)
	if size, vsize, err = s.writeTmp(ctx, tmp, r, opts.Date); err != nil {
		return 0, 0, err
	}
	if err := s.chargeQuota(ctx, p.root, opts.Quota, size); err != nil {
		os.Remove(tmp)
		return 0, 0, err
	}
	p.tmp = tmp
	return size, vsize, nil
}

// Delivered describes the message; Key and sizes are set once staged.
func (p *Staged) Delivered() *Delivered { d := p.d; return &d }

// Abort discards a staged message and refunds its quota. It does nothing
// after CommitAll returned nil, or a second time.
func (p *Staged) Abort() {
	if p.done {
		return
	}
	p.done = true
	p.discard()
}

// discard removes whatever exists of the message, named or not, and
// refunds its quota.
func (p *Staged) discard() {
	if p.linked {
		os.Remove(p.dst)
		p.linked = false
	}
	if p.f != nil {
		p.f.Close() // an unnamed file vanishes with its last descriptor
		p.f = nil
		p.s.anonHeld.Add(-1)
	}
	if p.tmp != "" {
		os.Remove(p.tmp)
		p.tmp = ""
	}
	p.s.refundQuota(p.root, p.d.Size)
}

// link gives the staged file its name in new/ (cur/): visible from now
// on, durable only once the directory is fsynced.
func (p *Staged) link() error {
	if p.f != nil {
		if err := linkAnon(p.f, p.dst); err != nil {
			return err
		}
		p.linked = true
		err := p.f.Close()
		p.f = nil
		p.s.anonHeld.Add(-1)
		return err
	}
	if err := os.Rename(p.tmp, p.dst); err != nil {
		return err
	}
	p.tmp, p.linked = "", true
	return nil
}

// CommitAll makes every staged message visible and durable, or none: it
// links them all, then fsyncs each directory that received one (shared
// with concurrent deliveries, see Options.NoGroupCommit), concurrently.
// If a link or an fsync fails, every message of the call is removed and
// its quota refunded, and the error is returned: nothing stays visible
// that is not durable, and no mailbox keeps a copy the others lost (short
// of a crash between the first link and the last fsync, which can leave
// some copies durable and the others never linked).
func CommitAll(ctx context.Context, staged ...*Staged) error {
	for _, p := range staged {
		if p.done {
			return errors.New("maildir: staged message already committed or aborted")
		}
	}
	var err error
	for _, p := range staged {
		if err = p.link(); err != nil {
			break
		}
	}
	if err == nil {
		err = syncStaged(ctx, staged)
	}
	for _, p := range staged {
		p.done = true
		if err != nil {
			p.discard()
		}
	}
	if err != nil {
		return err
	}
	for _, p := range staged {
		p.s.delivered(p.root, p.dir)
	}
	return nil
}

// syncStaged fsyncs every distinct directory the linked messages are in,
// concurrently, and returns the first failure.
func syncStaged(ctx context.Context, staged []*Staged) error {
	type dirKey struct {
		s   *Store
		dir string
	}
	if len(staged) == 1 {
		return staged[0].s.syncDir(ctx, staged[0].subDir)
	}
	seen := make(map[dirKey]bool, len(staged))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, p := range staged {
		k := dirKey{p.s, p.subDir}
		if seen[k] {
			continue
		}
		seen[k] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := k.s.syncDir(ctx, k.dir); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// delivered tells the in-memory state of the folder in dir, if a Maildir
// holding it is open, that a message file was added: its next sync
// rescans even if the directory stamps it holds look current (another
// change of the same instant may have made them so), and its poller, if
// any, runs that sync now.
func (s *Store) delivered(root, dir string) {
	if st := s.lookupFolder(root, dir); st != nil {
		st.added.Store(true)
		st.kick()
	}
}

// folderDir returns the directory of a checked folder name.
func folderDir(root, name string) string {
	if name == "INBOX" {
		return root
	}
	return filepath.Join(root, folderDirName(name))
}

// ensureFolder makes sure the folder's tmp, new and cur exist. INBOX (and
// with create, any folder) is created durably on first use.
func (s *Store) ensureFolder(root, dir, name string, create bool) error {
	if _, err := os.Stat(filepath.Join(dir, "cur")); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if name != "INBOX" && !create {
		return fmt.Errorf("%w: %s", ErrNoFolder, name)
	}
	if name == "INBOX" {
		return s.mkdirDurable(dir)
	}
	if err := s.checkDepth(name); err != nil {
		return err
	}
	if err := s.ensureFolder(root, root, "INBOX", true); err != nil {
		return err
	}
	return s.withFolderRoom(s.counterOf(root), root, func() error { return s.mkdirDurable(dir) })
}

// mkdirDurable creates dir with tmp/, new/ and cur/ and fsyncs every
// directory it created and its parent, up to the Store's base.
func (s *Store) mkdirDurable(dir string) error {
	var created []string
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		}
		created = append(created, p)
		if p == s.base || p == filepath.Dir(p) {
			break
		}
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	for i := len(created) - 1; i >= 0; i-- { // parents first
		if err := chownLike(created[i]); err != nil {
			return err
		}
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := chownLike(filepath.Join(dir, sub)); err != nil {
			return err
		}
	}
	toSync := []string{dir}
	for _, c := range created {
		toSync = append(toSync, filepath.Dir(c))
	}
	for _, p := range toSync {
		if err := fsyncDir(p); err != nil {
			return err
		}
	}
	return nil
}

// writeTmp writes r to a new file at tmp, makes it durable and sets its
// mtime to date, returning its size and its size with CRLF line endings.
func (s *Store) writeTmp(ctx context.Context, tmp string, r io.Reader, date time.Time) (size, vsize int64, err error) {
	f, size, vsize, err := s.writeTmpOpen(ctx, tmp, r, date)
	if err != nil {
		return 0, 0, err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return 0, 0, err
	}
	return size, vsize, nil
}

// writeTmpOpen writes r to a new file at tmp with mtime date (if set) and
// returns it open and not yet synced.
func (s *Store) writeTmpOpen(ctx context.Context, tmp string, r io.Reader, date time.Time) (f *os.File, size, vsize int64, err error) {
	f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, 0, 0, err
	}
	fail := func(e error) (*os.File, int64, int64, error) {
		f.Close()
		os.Remove(tmp)
		return nil, 0, 0, e
	}
	if err := chownLike(tmp); err != nil {
		return fail(err)
	}
	size, vsize, err = s.copyMessage(ctx, f, r)
	if err != nil {
		return fail(err)
	}
	if !date.IsZero() {
		// Before the sync, so the internal date is as durable as the data.
		if err := os.Chtimes(tmp, date, date); err != nil {
			return fail(err)
		}
	}
	return f, size, vsize, nil
}

// copyMessage copies r to f, counting its size and its size with CRLF
// line endings, within Options.MaxMessageSize.
func (s *Store) copyMessage(ctx context.Context, f *os.File, r io.Reader) (size, vsize int64, err error) {
	cw := &crlfCounter{max: s.opts.MaxMessageSize}
	bp := s.bufs.Get().(*[]byte)
	_, err = io.CopyBuffer(struct{ io.Writer }{io.MultiWriter(f, cw)}, struct{ io.Reader }{ctxio.NewReader(ctx, r)}, *bp)
	s.bufs.Put(bp)
	if err != nil {
		if cw.over {
			err = ErrTooLarge
		}
		return 0, 0, err
	}
	return cw.n, cw.n + cw.bareLF, nil
}

// crlfCounter counts bytes and the LFs not preceded by CR, whose sum is
// the message's size with CRLF line endings (Dovecot's "W=").
type crlfCounter struct {
	n, bareLF int64
	prevCR    bool
	max       int64
	over      bool
}

func (c *crlfCounter) Write(p []byte) (int, error) {
	for i, b := range p {
		if b == '\n' {
			if i == 0 && !c.prevCR || i > 0 && p[i-1] != '\r' {
				c.bareLF++
			}
		}
	}
	if len(p) > 0 {
		c.prevCR = p[len(p)-1] == '\r'
	}
	c.n += int64(len(p))
	if c.max > 0 && c.n > c.max {
		c.over = true
		return 0, ErrTooLarge
	}
	return len(p), nil
}

// CleanTmp removes files older than Options.TmpMaxAge from the tmp/
// directories of every folder of the Maildir at path. Open runs it too.
func (s *Store) CleanTmp(ctx context.Context, path string) error {
	root, err := s.resolve(path)
	if err != nil {
		return err
	}
	dirs := []string{root}
	ents, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if _, ok := folderFromDirName(e.Name()); ok && e.IsDir() {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	cutoff := s.opts.now().Add(-s.opts.TmpMaxAge)
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		tmp := filepath.Join(d, "tmp")
		f, err := os.Open(tmp)
		if err != nil {
			continue
		}
		names, _ := f.Readdirnames(-1)
		f.Close()
		for _, n := range names {
			if strings.HasPrefix(n, ".") {
				continue
			}
			p := filepath.Join(tmp, n)
			st, err := os.Lstat(p)
			if err != nil || st.IsDir() {
				continue
			}
			// Maildir's rule: files are not touched by deliveries after
			// their creation, so an old ctime means abandoned.
			if st.ModTime().Before(cutoff) && ctimeOf(st).Before(cutoff) {
				if err := os.Remove(p); err == nil {
					s.log.Info("maildir: removed stale tmp file", "path", p)
				}
			}
		}
	}
	return nil
}

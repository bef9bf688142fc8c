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
	"time"
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
	// is written to maildirsize when it differs from what is recorded.
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
func (s *Store) Deliver(ctx context.Context, path, folder string, r io.Reader, opts *DeliverOptions) (*Delivered, error) {
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
	now := s.opts.Now()
	key := s.names.next(now)
	sub := "new"
	if len(opts.Flags) > 0 {
		sub = "cur"
	}
	if s.anonEnabled() {
		d, ok, err := s.deliverAnon(ctx, root, dir, sub, key, info, r, opts)
		if ok {
			if err != nil {
				return nil, err
			}
			d.Folder = name
			s.delivered(root, dir)
			return d, nil
		}
	}
	tmp := filepath.Join(dir, "tmp", key)
	f, size, vsize, err := s.writeTmpOpen(ctx, tmp, r, opts.Date)
	if err != nil {
		return nil, err
	}
	if err := s.chargeQuota(ctx, root, opts.Quota, size); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	base := withSizes(key, size, vsize)
	final := base
	if sub == "cur" {
		final = base + infoSep + info
	}
	if err := s.commitFile(ctx, f, tmp, filepath.Join(dir, sub), final); err != nil {
		s.refundQuota(root, size)
		return nil, err
	}
	s.delivered(root, dir)
	return &Delivered{Folder: name, Key: base, Size: size, VSize: vsize}, nil
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
	if name != "INBOX" {
		if err := s.ensureFolder(root, root, "INBOX", true); err != nil {
			return err
		}
	}
	return s.mkdirDurable(dir)
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
	_, err = io.CopyBuffer(struct{ io.Writer }{io.MultiWriter(f, cw)}, struct{ io.Reader }{ctxReader{ctx, r}}, *bp)
	s.bufs.Put(bp)
	if err != nil {
		if cw.over {
			err = ErrTooLarge
		}
		return 0, 0, err
	}
	return cw.n, cw.n + cw.bareLF, nil
}

// commitFile makes the written file f at tmp durable, renames it to
// dir/final and fsyncs dir, the latter shared with concurrent deliveries
// (group commit) unless Options.NoGroupCommit. An error means nothing
// became visible.
func (s *Store) commitFile(ctx context.Context, f *os.File, tmp, dir, final string) error {
	dst := filepath.Join(dir, final)
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return s.syncDelivered(ctx, dir, dst)
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

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
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
	cutoff := s.opts.Now().Add(-s.opts.TmpMaxAge)
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

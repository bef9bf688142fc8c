package maildir

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mailagent/mailagent/internal/safeio"
)

// Quota is a Maildir++ limit; zero fields mean no limit.
type Quota struct {
	Bytes    int64
	Messages int64
}

// QuotaUsage is a Maildir's usage as maildirsize records it.
type QuotaUsage struct {
	Bytes    int64
	Messages int64
	// Limit is the limit recorded in maildirsize's first line.
	Limit Quota
}

// quotaStaleAge is how old maildirsize may be before an over-quota
// verdict is double-checked by recalculating, as Maildir++ prescribes.
const quotaStaleAge = 15 * time.Minute

// readQuota returns the usage recorded in root's maildirsize; ok is false
// when the file is missing, corrupt or too long and must be recalculated.
func readQuota(root string) (u QuotaUsage, mtime time.Time, exists, ok bool) {
	p := filepath.Join(root, maildirsizeName)
	f, err := os.Open(p)
	if err != nil {
		return u, mtime, false, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() >= maildirsizeMax {
		return u, mtime, true, false
	}
	data, err := io.ReadAll(io.LimitReader(f, maildirsizeMax))
	if err != nil {
		return u, mtime, true, false
	}
	u, err = parseMaildirsize(data)
	return u, st.ModTime(), true, err == nil
}

// recalcQuota sums the sizes of every message of every folder and writes
// a fresh maildirsize with limit, atomically (through tmp/ and rename).
func (s *Store) recalcQuota(ctx context.Context, root string, limit Quota) (QuotaUsage, error) {
	u := QuotaUsage{Limit: limit}
	dirs := []string{root}
	ents, err := os.ReadDir(root)
	if err != nil {
		return u, err
	}
	for _, e := range ents {
		if _, ok := folderFromDirName(e.Name()); ok && e.IsDir() {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	for _, d := range dirs {
		for _, sub := range []string{"new", "cur"} {
			if err := ctx.Err(); err != nil {
				return u, err
			}
			f, err := os.Open(filepath.Join(d, sub))
			if err != nil {
				continue
			}
			names, _ := f.Readdirnames(-1)
			f.Close()
			for _, n := range names {
				if !validBase(n) {
					continue
				}
				base, _, _ := splitFilename(n)
				size, _ := parseSizes(base)
				if size < 0 {
					st, err := os.Stat(filepath.Join(d, sub, n))
					if err != nil {
						continue
					}
					size = st.Size()
				}
				u.Bytes += size
				u.Messages++
			}
		}
	}
	content := formatQuotaDef(limit) + "\n" + maildirsizeLine(u.Bytes, u.Messages)
	// Not fsynced: maildirsize is recalculated when it is lost or wrong,
	// as Dovecot does. The temporary file goes to tmp/, as Dovecot's.
	tmpDir := filepath.Join(root, "tmp")
	err = safeio.WriteFile(filepath.Join(root, maildirsizeName), []byte(content), 0o600,
		safeio.TempDir(tmpDir), safeio.NoSync(),
		safeio.Prepare(func(f *os.File) error { return chownFileLike(f, tmpDir) }))
	if err != nil {
		return u, err
	}
	return u, nil
}

// usage returns the current usage, recalculating when needed; limit, if
// non-nil, replaces the recorded limit. create says whether a missing file
// without a limit should be created.
//
// A zero limit is a directory with no quota set for the user: the limit
// already recorded in maildirsize (one Dovecot or an administrator
// wrote) stays, so a move from Dovecot never turns a quota into none.
func (s *Store) usage(ctx context.Context, root string, limit *Quota, create bool) (QuotaUsage, bool, error) {
	if limit != nil && *limit == (Quota{}) {
		limit = nil
	}
	u, mtime, exists, ok := readQuota(root)
	if !exists && !create && (limit == nil || *limit == (Quota{})) {
		return QuotaUsage{}, false, nil
	}
	if limit != nil && ok && u.Limit != *limit {
		ok = false
	}
	if ok {
		return u, s.opts.now().Sub(mtime) > quotaStaleAge, nil
	}
	lim := u.Limit
	if limit != nil {
		lim = *limit
	}
	u, err := s.recalcQuota(ctx, root, lim)
	return u, false, err
}

// chargeQuota checks that size more bytes and one more message fit and
// records them in maildirsize.
func (s *Store) chargeQuota(ctx context.Context, root string, limit *Quota, size int64) error {
	if err := s.fits(ctx, root, limit, size); err != nil {
		return err
	}
	return s.addQuota(root, size, 1)
}

// fits returns a *QuotaError if size more bytes and one more message
// break the quota, double-checking a stale verdict by recalculating.
func (s *Store) fits(ctx context.Context, root string, limit *Quota, size int64) error {
	u, stale, err := s.usage(ctx, root, limit, false)
	if err != nil {
		return err
	}
	if u.Limit.exceeds(u, size) && stale {
		if u, err = s.recalcQuota(ctx, root, u.Limit); err != nil {
			return err
		}
	}
	if u.Limit.exceeds(u, size) {
		return &QuotaError{Limit: u.Limit, Usage: u, Size: size}
	}
	return nil
}

// addQuota appends a delta line to an existing maildirsize; with no file
// there is no quota to maintain.
func (s *Store) addQuota(root string, bytes, count int64) error {
	if bytes == 0 && count == 0 {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(root, maildirsizeName), os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// One write: O_APPEND keeps concurrent writers' lines whole.
	_, err = f.WriteString(maildirsizeLine(bytes, count))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Store) refundQuota(root string, size int64) {
	if err := s.addQuota(root, -size, -1); err != nil {
		s.log.Warn("maildir: updating maildirsize", "path", root, "err", err)
	}
}

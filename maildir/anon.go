package maildir

import (
	"context"
	"errors"
	"io"
)

// errAnonUnsupported: this file system or kernel cannot create unnamed
// files (O_TMPFILE); deliveries go through tmp/ instead.
var errAnonUnsupported = errors.New("maildir: unnamed files not supported")

// Whether a Store delivers through unnamed files (Store.anon).
const (
	anonUnknown int32 = iota // not tried yet
	anonOn                   // worked
	anonOff                  // unsupported here, or turned off
)

// openAnonFile is openAnon, replaceable by tests.
var openAnonFile = openAnon

// stageAnon writes the message from r into an unnamed file created in
// p.subDir, charges the quota and fsyncs it, leaving it open in p.f for
// link to give it a name: one directory entry created per message instead
// of tmp/'s create plus the rename into new/, with the same guarantees (no
// reader sees a partial file, a crash leaves no orphan). ok false means
// unnamed files are not supported here and nothing was read from r. On
// failure the file is closed and nothing is charged.
func (s *Store) stageAnon(ctx context.Context, p *Staged, r io.Reader, opts *DeliverOptions) (size, vsize int64, ok bool, err error) {
	f, err := openAnonFile(p.subDir)
	if err != nil {
		if errors.Is(err, errAnonUnsupported) {
			if s.anon.CompareAndSwap(anonUnknown, anonOff) {
				s.log.Info("maildir: unnamed files (O_TMPFILE) unsupported, delivering through tmp/", "dir", p.subDir, "err", err)
			}
			return 0, 0, false, nil
		}
		return 0, 0, true, err
	}
	s.anon.CompareAndSwap(anonUnknown, anonOn)
	charged := false
	defer func() {
		if err != nil {
			// The unnamed file vanishes with its last descriptor.
			f.Close()
			if charged {
				s.refundQuota(p.root, size)
			}
		}
	}()
	if err = chownFileLike(f, p.subDir); err != nil {
		return 0, 0, true, err
	}
	if size, vsize, err = s.copyMessage(ctx, f, r); err != nil {
		return 0, 0, true, err
	}
	if date := opts.Date; !date.IsZero() {
		// Before the sync, so the internal date is as durable as the data.
		if err = chtimesAnon(f, date); err != nil {
			return 0, 0, true, err
		}
	}
	if err = s.chargeQuota(ctx, p.root, opts.Quota, size); err != nil {
		return 0, 0, true, err
	}
	charged = true
	// fsync, not fdatasync: for a new file both commit the journal, and
	// fsync also covers the mtime set above.
	if err = f.Sync(); err != nil {
		return 0, 0, true, err
	}
	p.f = f
	return size, vsize, true, nil
}

// syncDir fsyncs dir after message files were named in it, shared with
// concurrent deliveries unless Options.NoGroupCommit.
func (s *Store) syncDir(ctx context.Context, dir string) error {
	if s.opts.NoGroupCommit {
		return fsyncDir(dir)
	}
	// Once named the delivery is committed to finishing: a caller
	// giving up must not leave it visible but not durable.
	return s.syncers.syncDir(context.WithoutCancel(ctx), dir)
}

// anonEnabled reports whether deliveries should try unnamed files.
func (s *Store) anonEnabled() bool { return s.anon.Load() != anonOff }

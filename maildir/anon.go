package maildir

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
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

// deliverAnon writes the message from r into an unnamed file created in
// dir/sub and makes it durable. Only after a complete, fsynced file does
// it get its name in sub/, then the directory is fsynced: one directory
// entry created per message instead of tmp/'s create plus the rename into
// new/, with the same guarantees (no reader sees a partial file, a crash
// leaves no orphan, a delivery that returned is on disk). ok false means
// unnamed files are not supported here and nothing was read from r.
func (s *Store) deliverAnon(ctx context.Context, root, dir, sub, key, info string, r io.Reader, opts *DeliverOptions) (d *Delivered, ok bool, err error) {
	subDir := filepath.Join(dir, sub)
	f, err := openAnonFile(subDir)
	if err != nil {
		if errors.Is(err, errAnonUnsupported) {
			if s.anon.CompareAndSwap(anonUnknown, anonOff) {
				s.log.Info("maildir: unnamed files (O_TMPFILE) unsupported, delivering through tmp/", "dir", subDir, "err", err)
			}
			return nil, false, nil
		}
		return nil, true, err
	}
	s.anon.CompareAndSwap(anonUnknown, anonOn)
	// On failure the unnamed file vanishes with its last descriptor; on
	// success it is closed below, and this second Close does nothing.
	defer f.Close()
	if err := chownFileLike(f, subDir); err != nil {
		return nil, true, err
	}
	size, vsize, err := s.copyMessage(ctx, f, r)
	if err != nil {
		return nil, true, err
	}
	date := opts.Date
	if !date.IsZero() {
		// Before the sync, so the internal date is as durable as the data.
		if err := chtimesAnon(f, date); err != nil {
			return nil, true, err
		}
	}
	if err := s.chargeQuota(ctx, root, opts.Quota, size); err != nil {
		return nil, true, err
	}
	base := withSizes(key, size, vsize)
	final := base
	if sub == "cur" {
		final = base + infoSep + info
	}
	dst := filepath.Join(subDir, final)
	// fsync, not fdatasync: for a new file both commit the journal, and
	// fsync also covers the mtime set above.
	err = f.Sync()
	if err == nil {
		err = linkAnon(f, dst)
		if err == nil {
			if err = f.Close(); err != nil {
				os.Remove(dst)
			}
		}
	}
	if err == nil {
		err = s.syncDelivered(ctx, subDir, dst)
	}
	if err != nil {
		s.refundQuota(root, size)
		return nil, true, err
	}
	return &Delivered{Key: base, Size: size, VSize: vsize}, true, nil
}

// syncDelivered fsyncs dir after the message file dst appeared in it,
// shared with concurrent deliveries unless Options.NoGroupCommit; on
// failure it removes dst, so that nothing not durable stays visible.
func (s *Store) syncDelivered(ctx context.Context, dir, dst string) error {
	var err error
	if s.opts.NoGroupCommit {
		err = fsyncDir(dir)
	} else {
		// Once named the delivery is committed to finishing: a caller
		// giving up must not leave it visible but not durable.
		err = s.syncers.syncDir(context.WithoutCancel(ctx), dir)
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

// anonEnabled reports whether deliveries should try unnamed files.
func (s *Store) anonEnabled() bool { return s.anon.Load() != anonOff }

package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockName is the file in a spool directory whose flock says that a
// queue owns the spool. The kernel drops the lock when the owner's
// process dies, however it dies; on NFS, Linux maps flock to the
// protocol's byte-range locks, which the server drops when the dead
// client's lease runs out (90 s by default on NFSv4).
const lockName = "lock"

// ErrLocked is returned, wrapped, by New when another queue (in this
// process or another, on this node or another sharing the storage)
// owns the spool directory for longer than Options.LockWait.
var ErrLocked = errors.New("queue: spool in use by another queue")

// lockSpool takes the lock of the spool in dir, waiting up to wait for
// an owner to let it go. The lock is held until the file is closed.
func lockSpool(ctx context.Context, dir string, wait time.Duration) (*os.File, error) {
	deadline := time.Now().Add(wait)
	delay := 5 * time.Millisecond
	for {
		f, err := tryLockSpool(dir)
		if !errors.Is(err, ErrLocked) || !time.Now().Before(deadline) {
			return f, err
		}
		t := time.NewTimer(min(delay, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// tryLockSpool takes the lock of the spool in dir if it is free, or
// fails with an error matching ErrLocked.
func tryLockSpool(dir string) (*os.File, error) {
	p := filepath.Join(dir, lockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return f, nil
}

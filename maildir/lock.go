package maildir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// sessionLockName is the file the session lock is taken on.
const sessionLockName = "mailagent-session.lock"

// Lock takes the Maildir's cross-process session lock (an flock on
// "mailagent-session.lock" in the Maildir), waiting until ctx is done.
// POP3 holds it for a session (RFC 1939 §8's exclusive-access lock).
// The lock is released by calling the returned function, or by the
// kernel when the process dies.
func (m *Maildir) Lock(ctx context.Context) (unlock func(), err error) {
	wait := 5 * time.Millisecond
	for {
		unlock, err := m.TryLock()
		if !errors.Is(err, ErrLocked) {
			return unlock, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// TryLock is Lock without waiting: ErrLocked if another session holds it.
func (m *Maildir) TryLock() (unlock func(), err error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	p := filepath.Join(m.path, sessionLockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	chownLike(p)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}

package maildir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// dotlockStale is how long a dot-lock may sit unchanged before it is taken
// over; Dovecot uses two minutes for dovecot-uidlist.lock.
const dotlockStale = 2 * time.Minute

// dotlock is a Dovecot-compatible lock file "<target>.lock", created
// exclusively and holding "pid:host" so that a lock left by a dead process
// on this host is broken at once rather than after dotlockStale.
type dotlock struct {
	path string
}

func acquireDotlock(ctx context.Context, target string, pid int, host string) (*dotlock, error) {
	lp := target + ".lock"
	wait := 2 * time.Millisecond
	// The lock is written under a name of its own, then linked to its
	// place (as Dovecot does): a process killed between creating the
	// lock and writing its pid would otherwise leave an empty lock that
	// no one can tell is abandoned, stopping every writer for
	// dotlockStale.
	tmp := lp + "." + strconv.Itoa(pid) + "." + strconv.FormatInt(time.Now().UnixNano(), 36)
	err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+":"+host), 0o600)
	if err == nil {
		// Dovecot running as the mail user watches a lock it waits for
		// (inotify needs read access).
		err = chownLike(tmp)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("maildir: writing a lock for %s: %w", target, err)
	}
	defer os.Remove(tmp)
	for {
		err := os.Link(tmp, lp)
		if err == nil {
			return &dotlock{path: lp}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if dotlockIsStale(lp, pid, host) {
			os.Remove(lp)
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("maildir: waiting for %s: %w", lp, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// dotlockIsStale reports whether the lock at lp was left by a process that
// no longer runs on this host, or has not been touched for dotlockStale.
func dotlockIsStale(lp string, pid int, host string) bool {
	st, err := os.Stat(lp)
	if err != nil {
		return false // gone already: the next create attempt decides
	}
	if time.Since(st.ModTime()) > dotlockStale {
		return true
	}
	data, err := os.ReadFile(lp)
	if err != nil || len(data) > 512 {
		return false
	}
	p, h, ok := strings.Cut(strings.TrimSpace(string(data)), ":")
	if !ok || h != host {
		return false
	}
	other, err := strconv.Atoi(p)
	if err != nil || other <= 0 {
		return false
	}
	if other == pid {
		// Our own pid: held by this process unless it predates it (a
		// previous run that crashed, restarted with the same pid, as
		// happens to a container's pid 1).
		return st.ModTime().Before(processStart.Add(-10 * time.Millisecond))
	}
	return errors.Is(syscall.Kill(other, 0), syscall.ESRCH)
}

// processStart is when this process loaded the package, to tell our own
// locks from those a previous process with the same pid left behind.
// It is set once and never changed.
var processStart = time.Now()

func (l *dotlock) release() error {
	if l == nil {
		return nil
	}
	err := os.Remove(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

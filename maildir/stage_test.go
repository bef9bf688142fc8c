package maildir

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stageUsers opens three users' Maildirs with a quota, for tests of one
// message staged to several mailboxes.
func stageUsers(t *testing.T, s *Store) []string {
	t.Helper()
	var paths []string
	for _, u := range []string{"u1", "u2", "u3"} {
		p, err := s.UserPath("example.org", u)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Open(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.SetQuota(context.Background(), Quota{Bytes: 10000, Messages: 10}); err != nil {
			t.Fatal(err)
		}
		m.Close()
		paths = append(paths, m.Path())
	}
	return paths
}

// stageStore returns a Store delivering through unnamed files or not,
// and three users' Maildirs in it.
func stageStore(t *testing.T, anon bool) (*Store, []string) {
	t.Helper()
	s := newTestStore(t, nil)
	if !anon {
		s.anon.Store(anonOff)
	}
	return s, stageUsers(t, s)
}

// visible counts the message files of the Maildir at root's INBOX in new/
// and cur/, and every file left in tmp/.
func visible(t *testing.T, root string) (msgs, tmp int) {
	t.Helper()
	return len(filesIn(t, root, "new")) + len(filesIn(t, root, "cur")), len(filesIn(t, root, "tmp"))
}

func usageOf(t *testing.T, root string) QuotaUsage {
	t.Helper()
	u, _, _, ok := readQuota(root)
	if !ok {
		t.Fatalf("no maildirsize in %s", root)
	}
	return u
}

// TestStageCommitAll stages one message for three mailboxes, through
// unnamed files and through tmp/: nothing is in new/ or cur/ before
// CommitAll (the quota is already charged), and all three are after it,
// with nothing left in tmp/.
func TestStageCommitAll(t *testing.T) {
	for _, anon := range []bool{true, false} {
		t.Run(map[bool]string{true: "unnamed", false: "rename"}[anon], func(t *testing.T) {
			ctx := context.Background()
			s, paths := stageStore(t, anon)
			body := "Subject: three\r\n\r\nhello\r\n"
			var staged []*Staged
			for _, p := range paths {
				st, err := s.Stage(ctx, p, "INBOX", strings.NewReader(body), &DeliverOptions{Quota: &Quota{Bytes: 10000, Messages: 10}})
				if err != nil {
					t.Fatal(err)
				}
				staged = append(staged, st)
			}
			if anon && s.anon.Load() != anonOn {
				t.Skip("unnamed files (O_TMPFILE) unsupported on this file system")
			}
			for _, p := range paths {
				n, tmp := visible(t, p)
				if n != 0 {
					t.Fatalf("%s: %d messages visible before CommitAll", p, n)
				}
				if want := map[bool]int{true: 0, false: 1}[anon]; tmp != want {
					t.Fatalf("%s: %d files in tmp/, want %d", p, tmp, want)
				}
				if u := usageOf(t, p); u.Messages != 1 || u.Bytes != int64(len(body)) {
					t.Fatalf("%s: usage %+v while staged", p, u)
				}
			}
			if err := CommitAll(ctx, staged...); err != nil {
				t.Fatal(err)
			}
			for i, p := range paths {
				names := filesIn(t, p, "new")
				if len(names) != 1 || names[0] != staged[i].Delivered().Key {
					t.Fatalf("%s: new/ %v, want %s", p, names, staged[i].Delivered().Key)
				}
				if b, _ := os.ReadFile(filepath.Join(p, "new", names[0])); string(b) != body {
					t.Fatalf("%s: content %q", p, b)
				}
				if _, tmp := visible(t, p); tmp != 0 {
					t.Fatalf("%s: tmp/ not empty after commit", p)
				}
			}
			// Abort after a successful commit leaves the message alone.
			staged[0].Abort()
			if n, _ := visible(t, paths[0]); n != 1 {
				t.Fatal("Abort after CommitAll removed the message")
			}
			if err := CommitAll(ctx, staged[1]); err == nil {
				t.Fatal("second CommitAll of the same message succeeded")
			}
		})
	}
}

// TestStageAbortAndFailedCommit: Abort discards a staged message and
// refunds its quota; a CommitAll whose second mailbox vanished after the
// message was staged (its new/ is gone) fails and leaves no copy in the
// first or third mailbox, and no quota charged anywhere.
func TestStageAbortAndFailedCommit(t *testing.T) {
	for _, anon := range []bool{true, false} {
		t.Run(map[bool]string{true: "unnamed", false: "rename"}[anon], func(t *testing.T) {
			ctx := context.Background()
			s, paths := stageStore(t, anon)
			lim := &Quota{Bytes: 10000, Messages: 10}
			stage := func() []*Staged {
				var staged []*Staged
				for _, p := range paths {
					st, err := s.Stage(ctx, p, "INBOX", strings.NewReader("Subject: x\r\n\r\nbody\r\n"), &DeliverOptions{Quota: lim})
					if err != nil {
						t.Fatal(err)
					}
					staged = append(staged, st)
				}
				return staged
			}
			for _, st := range stage() {
				st.Abort()
				st.Abort()
			}
			for _, p := range paths {
				if n, tmp := visible(t, p); n != 0 || tmp != 0 {
					t.Fatalf("%s: %d messages, %d tmp files after Abort", p, n, tmp)
				}
				if u := usageOf(t, p); u.Messages != 0 || u.Bytes != 0 {
					t.Fatalf("%s: usage %+v after Abort", p, u)
				}
			}
			if s.anonHeld.Load() != 0 {
				t.Fatalf("%d unnamed files still held", s.anonHeld.Load())
			}

			staged := stage()
			// The second mailbox disappears between Stage and CommitAll.
			if err := os.RemoveAll(filepath.Join(paths[1], "new")); err != nil {
				t.Fatal(err)
			}
			err := CommitAll(ctx, staged...)
			if !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("CommitAll: %v, want a missing directory", err)
			}
			for _, p := range []string{paths[0], paths[2]} {
				if n, tmp := visible(t, p); n != 0 || tmp != 0 {
					t.Fatalf("%s: %d messages, %d tmp files after a failed CommitAll", p, n, tmp)
				}
			}
			for _, p := range paths {
				if u := usageOf(t, p); u.Messages != 0 || u.Bytes != 0 {
					t.Fatalf("%s: usage %+v after a failed CommitAll", p, u)
				}
			}
			if s.anonHeld.Load() != 0 {
				t.Fatalf("%d unnamed files still held", s.anonHeld.Load())
			}
		})
	}
}

// TestStageDirFsyncFails: when the directory fsync after the links fails,
// CommitAll removes every copy it linked.
func TestStageDirFsyncFails(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	paths := stageUsers(t, s)
	var staged []*Staged
	for _, p := range paths {
		st, err := s.Stage(ctx, p, "INBOX", strings.NewReader("x\r\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		staged = append(staged, st)
	}
	ioErr := errors.New("input/output error")
	dirFsync = func(path string) error {
		if strings.HasPrefix(path, paths[2]) {
			return ioErr
		}
		return fsyncDir(path)
	}
	t.Cleanup(func() { dirFsync = fsyncDir })
	if err := CommitAll(ctx, staged...); !errors.Is(err, ioErr) {
		t.Fatalf("CommitAll: %v", err)
	}
	for _, p := range paths {
		if n, tmp := visible(t, p); n != 0 || tmp != 0 {
			t.Fatalf("%s: %d messages, %d tmp files after a failed fsync", p, n, tmp)
		}
	}
}

// TestCheckQuota: a Maildir with room answers nil, one whose usage is at
// its limit (bytes or messages) a *QuotaError, and one not created yet
// is empty.
func TestCheckQuota(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	lim := &Quota{Bytes: 10, Messages: 2}
	if err := s.CheckQuota(ctx, "never/delivered", lim, 1); err != nil {
		t.Fatalf("new Maildir: %v", err)
	}
	if err := s.CheckQuota(ctx, "never/delivered", lim, 11); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("new Maildir, message over the limit: %v", err)
	}
	if err := s.CheckQuota(ctx, m.Path(), lim, 1); err != nil {
		t.Fatalf("empty: %v", err)
	}
	if _, err := s.Deliver(ctx, m.Path(), "INBOX", strings.NewReader("0123456789"), &DeliverOptions{Quota: lim}); err != nil {
		t.Fatal(err)
	}
	var qe *QuotaError
	if err := s.CheckQuota(ctx, m.Path(), lim, 1); !errors.As(err, &qe) || qe.Usage.Bytes != 10 {
		t.Fatalf("full by bytes: %v", err)
	}
	big := &Quota{Bytes: 1000, Messages: 1}
	if err := s.CheckQuota(ctx, m.Path(), big, 1); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("full by messages: %v", err)
	}
	if err := s.CheckQuota(ctx, m.Path(), &Quota{Bytes: 1000, Messages: 5}, 1); err != nil {
		t.Fatalf("room left: %v", err)
	}
}

// TestStageAnonHeldLimit: with maxAnonHeld unnamed files already staged,
// the next message is staged through tmp/ (holding no descriptor), and a
// failed Stage gives its place back.
func TestStageAnonHeldLimit(t *testing.T) {
	ctx := context.Background()
	s, paths := stageStore(t, true)
	st, err := s.Stage(ctx, paths[0], "INBOX", strings.NewReader("x\r\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.anon.Load() != anonOn {
		t.Skip("unnamed files (O_TMPFILE) unsupported on this file system")
	}
	if _, tmp := visible(t, paths[0]); tmp != 0 || s.anonHeld.Load() != 1 {
		t.Fatalf("%d tmp files, %d held", tmp, s.anonHeld.Load())
	}
	st.Abort()
	s.anonHeld.Store(maxAnonHeld)
	st, err = s.Stage(ctx, paths[1], "INBOX", strings.NewReader("x\r\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, tmp := visible(t, paths[1]); tmp != 1 || s.anonHeld.Load() != maxAnonHeld {
		t.Fatalf("at the limit: %d tmp files, %d held", tmp, s.anonHeld.Load())
	}
	if err := CommitAll(ctx, st); err != nil {
		t.Fatal(err)
	}
	s.anonHeld.Store(0)
	big := strings.NewReader(strings.Repeat("y", 20000))
	if _, err := s.Stage(ctx, paths[2], "INBOX", big, &DeliverOptions{Quota: &Quota{Bytes: 10000}}); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if n := s.anonHeld.Load(); n != 0 {
		t.Fatalf("%d held after a failed Stage", n)
	}
}

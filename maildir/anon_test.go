package maildir

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestDeliverPaths delivers through unnamed files (O_TMPFILE) and through
// tmp/ and a rename, and checks that both leave the same files: Dovecot's
// names with S= and W=, the content, the internal date as mtime, flags in
// cur/, maildirsize kept, nothing in tmp/; and that the unnamed-file path
// does not touch tmp/ at all.
func TestDeliverPaths(t *testing.T) {
	for _, anon := range []bool{true, false} {
		name := "rename"
		if anon {
			name = "unnamed"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := newTestStore(t, nil)
			if !anon {
				s.anon.Store(anonOff)
			}
			m := openUser(t, s)
			lim := Quota{Bytes: 10000, Messages: 3}
			if err := m.SetQuota(ctx, lim); err != nil {
				t.Fatal(err)
			}
			tmpDir := filepath.Join(m.Path(), "tmp")
			old := time.Now().Add(-time.Hour).Truncate(time.Second)
			if err := os.Chtimes(tmpDir, old, old); err != nil {
				t.Fatal(err)
			}

			body := "Subject: plain\n\nline one\nline two\r\n"
			d, err := s.Deliver(ctx, m.Path(), "INBOX", strings.NewReader(body), &DeliverOptions{Quota: &lim})
			if err != nil {
				t.Fatal(err)
			}
			if anon && runtime.GOOS == "linux" && s.anon.Load() != anonOn {
				t.Skip("unnamed files (O_TMPFILE) unsupported on this file system")
			}
			if d.Folder != "INBOX" || d.Size != int64(len(body)) || d.VSize != int64(len(body))+3 {
				t.Fatalf("delivered %+v", d)
			}
			newFiles := filesIn(t, m.Path(), "new")
			if want := d.Key; len(newFiles) != 1 || newFiles[0] != want ||
				!strings.HasSuffix(want, ",S="+itoa(d.Size)+",W="+itoa(d.VSize)) {
				t.Fatalf("new/ %v, delivered %q", newFiles, d.Key)
			}
			p := filepath.Join(m.Path(), "new", newFiles[0])
			if data, _ := os.ReadFile(p); string(data) != body {
				t.Fatalf("content %q", data)
			}
			if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v", st.Mode())
			}

			date := time.Date(2021, 3, 4, 5, 6, 7, 890000000, time.UTC)
			d2, err := s.Deliver(ctx, m.Path(), "INBOX", strings.NewReader("x\n"),
				&DeliverOptions{Flags: []string{FlagSeen, "Work"}, Date: date, Quota: &lim})
			if err != nil {
				t.Fatal(err)
			}
			cur := filesIn(t, m.Path(), "cur")
			if len(cur) != 1 || cur[0] != d2.Key+":2,Sa" {
				t.Fatalf("cur/ %v, delivered %q", cur, d2.Key)
			}
			if st, _ := os.Stat(filepath.Join(m.Path(), "cur", cur[0])); !st.ModTime().Equal(date) {
				t.Fatalf("mtime %v, want %v", st.ModTime(), date)
			}
			got, err := folder(t, m, "INBOX").Message(ctx, 2)
			if err != nil || !got.InternalDate.Equal(date) || !slices.Equal(got.Flags, []string{`\Seen`, "Work"}) || got.VSize != 3 {
				t.Fatalf("%+v %v", got, err)
			}

			u, err := m.Quota(ctx)
			if err != nil || u.Messages != 2 || u.Bytes != d.Size+d2.Size {
				t.Fatalf("quota %+v %v", u, err)
			}
			// Over quota: refused, nothing left anywhere, usage unchanged.
			_, err = s.Deliver(ctx, m.Path(), "INBOX", strings.NewReader(strings.Repeat("y", 10000)), &DeliverOptions{Quota: &lim})
			if !errors.Is(err, ErrOverQuota) {
				t.Fatalf("over quota: %v", err)
			}
			// Too large: the same.
			s.opts.MaxMessageSize = 100
			if _, err := s.Deliver(ctx, m.Path(), "INBOX", strings.NewReader(strings.Repeat("z", 200)), nil); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("too large: %v", err)
			}
			if n := len(filesIn(t, m.Path(), "new")) + len(filesIn(t, m.Path(), "cur")); n != 2 {
				t.Fatalf("%d message files", n)
			}
			if u2, _ := m.Quota(ctx); u2 != u {
				t.Fatalf("quota after refusals %+v, was %+v", u2, u)
			}
			if left := filesIn(t, m.Path(), "tmp"); len(left) != 0 {
				t.Fatalf("tmp/ keeps %v", left)
			}
			st, err := os.Stat(tmpDir)
			if err != nil {
				t.Fatal(err)
			}
			if touched := !st.ModTime().Equal(old); touched == anon {
				t.Fatalf("tmp/ modified: %v (unnamed files: %v)", touched, anon)
			}
		})
	}
}

// TestDeliverUnnamedFallback: a Store whose first delivery finds unnamed
// files unsupported remembers it and delivers through tmp/ from then on;
// one that found them working keeps using them.
func TestDeliverUnnamedFallback(t *testing.T) {
	s := newTestStore(t, nil)
	m := openUser(t, s)
	if runtime.GOOS != "linux" {
		deliver(t, s, m, "INBOX", "a\n")
		if s.anon.Load() != anonOff {
			t.Fatal("unnamed files used outside Linux")
		}
		return
	}
	deliver(t, s, m, "INBOX", "a\n")
	if s.anon.Load() == anonOff {
		t.Skip("unnamed files (O_TMPFILE) unsupported on this file system")
	}
	if s.anon.Load() != anonOn {
		t.Fatalf("state %d after a delivery", s.anon.Load())
	}
	// A file system without O_TMPFILE: the open fails "unsupported" on
	// the first try, the Store switches to tmp/ for good.
	s2 := newTestStore(t, nil)
	m2 := openUser(t, s2)
	tried := 0
	openAnonFile = func(dir string) (*os.File, error) {
		tried++
		return nil, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: errAnonUnsupported}
	}
	t.Cleanup(func() { openAnonFile = openAnon })
	d := deliver(t, s2, m2, "INBOX", "b\n")
	if s2.anon.Load() != anonOff || tried != 1 {
		t.Fatalf("state %d after an unsupported open (%d tries)", s2.anon.Load(), tried)
	}
	openAnonFile = openAnon
	deliver(t, s2, m2, "INBOX", "c\n")
	if s2.anon.Load() != anonOff || tried != 1 {
		t.Fatal("unnamed files tried again")
	}
	if left := filesIn(t, m2.Path(), "tmp"); len(left) != 0 {
		t.Fatalf("tmp/ keeps %v", left)
	}
	if got := filesIn(t, m2.Path(), "new"); len(got) != 2 || !slices.Contains(got, d.Key) {
		t.Fatalf("new/ %v", got)
	}
	var bodies []string
	for _, n := range filesIn(t, m2.Path(), "new") {
		data, _ := os.ReadFile(filepath.Join(m2.Path(), "new", n))
		bodies = append(bodies, string(data))
	}
	slices.Sort(bodies)
	if !slices.Equal(bodies, []string{"b\n", "c\n"}) {
		t.Fatalf("bodies %q", bodies)
	}
}

// TestTmpCleanupOtherWriters: files other programs left in tmp/ are still
// removed once old, whichever way this Store delivers.
func TestTmpCleanupOtherWriters(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, nil)
	m := openUser(t, s)
	deliver(t, s, m, "INBOX", "a\n")
	if err := m.CreateFolder(ctx, "Lists"); err != nil {
		t.Fatal(err)
	}
	stale := []string{filepath.Join(m.Path(), "tmp", "1.M1P1.other"), filepath.Join(m.Path(), ".Lists", "tmp", "2.M2P2.other")}
	for _, p := range stale {
		mustWriteFile(t, p, "partial")
	}
	future := time.Now().Add(37 * time.Hour)
	s2, err := New(s.base, &Options{now: func() time.Time { return future }})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	m2, err := s2.Open(ctx, m.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s kept: %v", p, err)
		}
	}
	if data, err := os.ReadFile(filepath.Join(m.Path(), "new", filesIn(t, m.Path(), "new")[0])); err != nil || !bytes.Equal(data, []byte("a\n")) {
		t.Fatalf("delivered message: %q %v", data, err)
	}
}

// TestDeliverUnnamedFailures: a delivery through an unnamed file that
// fails (reader error, too large, over quota, cancelled) closes the file,
// leaves no message and no quota charged.
func TestDeliverUnnamedFailures(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("unnamed files (O_TMPFILE) are Linux only")
	}
	s := newTestStore(t, nil)
	m := openUser(t, s)
	deliver(t, s, m, "INBOX", "a\n")
	if s.anon.Load() != anonOn {
		t.Skip("unnamed files (O_TMPFILE) unsupported on this file system")
	}
	var opened []*os.File
	openAnonFile = func(dir string) (*os.File, error) {
		f, err := openAnon(dir)
		if err == nil {
			opened = append(opened, f)
		}
		return f, err
	}
	t.Cleanup(func() { openAnonFile = openAnon })
	ctx := context.Background()
	lim := Quota{Bytes: 100, Messages: 10}
	if err := m.SetQuota(ctx, lim); err != nil {
		t.Fatal(err)
	}
	before, err := m.Quota(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Cancelled while the message is being read.
	cancelled, cancel := context.WithCancel(ctx)
	defer cancel()
	cancelling := io.MultiReader(strings.NewReader("partial"), readerFunc(func([]byte) (int, error) {
		cancel()
		return 0, io.EOF
	}), strings.NewReader("rest"))
	readErr := errors.New("connection reset")
	cases := []struct {
		name string
		ctx  context.Context
		r    io.Reader
		max  int64
		want error
	}{
		{"reader error", ctx, io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(readErr)), 0, readErr},
		{"too large", ctx, strings.NewReader(strings.Repeat("z", 60)), 50, ErrTooLarge},
		{"over quota", ctx, strings.NewReader(strings.Repeat("y", 200)), 0, ErrOverQuota},
		{"cancelled", cancelled, cancelling, 0, context.Canceled},
	}
	for _, c := range cases {
		opened = nil
		s.opts.MaxMessageSize = c.max
		_, err := s.Deliver(c.ctx, m.Path(), "INBOX", c.r, &DeliverOptions{Quota: &lim})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if len(opened) != 1 {
			t.Errorf("%s: %d unnamed files opened, want 1", c.name, len(opened))
		}
		for _, f := range opened {
			if err := f.Close(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("%s: unnamed file left open (Close: %v)", c.name, err)
			}
		}
	}
	if n := len(filesIn(t, m.Path(), "new")) + len(filesIn(t, m.Path(), "cur")) + len(filesIn(t, m.Path(), "tmp")); n != 1 {
		t.Fatalf("%d files after failed deliveries, want the first message only", n)
	}
	if after, _ := m.Quota(ctx); after != before {
		t.Fatalf("quota %+v after failed deliveries, was %+v", after, before)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

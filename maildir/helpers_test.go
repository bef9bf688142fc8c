package maildir

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestStore(t testing.TB, opts *Options) *Store {
	t.Helper()
	s, err := New(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openUser(t testing.TB, s *Store) *Maildir {
	t.Helper()
	p, err := s.UserPath("example.org", "alice")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func folder(t testing.TB, m *Maildir, name string) *Folder {
	t.Helper()
	f, err := m.Folder(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func snapshot(t testing.TB, f *Folder) *Snapshot {
	t.Helper()
	s, err := f.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// msg builds a message body of about n bytes with LF line endings.
func msg(subject string, n int) string {
	var b strings.Builder
	b.WriteString("Subject: " + subject + "\n\n")
	for b.Len() < n {
		b.WriteString("line of text\n")
	}
	return b.String()
}

func deliver(t testing.TB, s *Store, m *Maildir, folder, body string) *Delivered {
	t.Helper()
	d, err := s.Deliver(context.Background(), m.Path(), folder, strings.NewReader(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// filesIn lists the names in dir/sub.
func filesIn(t testing.TB, dir, sub string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, sub))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// waitEvent returns the next event or fails after d.
func waitEvent(t testing.TB, ch <-chan Event, d time.Duration) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no event within %v", d)
	}
	return Event{}
}

func timeUnix(sec int64, usec int) time.Time { return time.Unix(sec, int64(usec)*1000) }

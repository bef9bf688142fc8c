package maildir

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func benchBody() []byte {
	var b bytes.Buffer
	b.WriteString("Subject: bench\r\n\r\n")
	for b.Len() < 10240-78 {
		b.WriteString("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123\r\n")
	}
	return b.Bytes()
}

// naiveDeliver is the baseline: the least a durable Maildir delivery must
// do, per message, with no sharing between deliverers.
func naiveDeliver(dir string, name string, body []byte) error {
	tmp := filepath.Join(dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "new", name)); err != nil {
		return err
	}
	return fsyncDir(filepath.Join(dir, "new"))
}

// BenchmarkDeliver compares Deliver with the naive per-message loop at 1,
// 8 and 32 concurrent deliverers, 10 KB messages, on the same disk. The
// variants take turns in batches of 64 messages within each iteration
// (in rotating order), so the disk's drift (other processes' fsyncs) hits
// all alike. The metrics are the naive loop's and Deliver's time per
// message, and the ratio naive/variant (above 1 means the variant is
// faster) for: Deliver as configured by default ("ratio": unnamed files
// where supported, grouped directory fsyncs), with two or eight
// directory fsyncs in flight instead of four ("ratio-inflight2",
// "ratio-inflight8"), with NoGroupCommit ("ratio-nogroup"), and through tmp/ and a rename, grouped or not
// ("ratio-rename", "ratio-rename-nogroup"); then the directory fsyncs per
// message the default Deliver issued.
func BenchmarkDeliver(b *testing.B) {
	body := benchBody()
	const batch = 64
	for _, conc := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			base := b.TempDir()
			naiveDir := filepath.Join(base, "naive")
			for _, sub := range []string{"tmp", "new", "cur"} {
				os.MkdirAll(filepath.Join(naiveDir, sub), 0o700)
			}
			newStore := func(opts *Options, anon bool) *Store {
				s, err := New(base, opts)
				if err != nil {
					b.Fatal(err)
				}
				if !anon {
					s.anon.Store(anonOff)
				}
				b.Cleanup(func() { s.Close() })
				return s
			}
			s := newStore(nil, true)
			inflight2 := newStore(nil, true)
			inflight2.syncers.limit = 2
			inflight8 := newStore(nil, true)
			inflight8.syncers.limit = 8
			ctx := context.Background()
			// The same Dovecot-style names as Deliver: name length changes
			// the directory's size and so the cost of every rename.
			names := newNamer(os.Getpid(), "bench")
			type variant struct {
				metric string
				op     func() error
				took   time.Duration
			}
			viaStore := func(st *Store, path string) func() error {
				return func() error {
					_, err := st.Deliver(ctx, path, "INBOX", bytes.NewReader(body), nil)
					return err
				}
			}
			variants := []*variant{
				{metric: "naive", op: func() error {
					return naiveDeliver(naiveDir, withSizes(names.next(time.Now()), int64(len(body)), int64(len(body))), body)
				}},
				{metric: "ratio", op: viaStore(s, "Maildir")},
				{metric: "ratio-nogroup", op: viaStore(newStore(&Options{NoGroupCommit: true}, true), "Plain")},
				{metric: "ratio-inflight2", op: viaStore(inflight2, "Two")},
				{metric: "ratio-inflight8", op: viaStore(inflight8, "Eight")},
				{metric: "ratio-rename", op: viaStore(newStore(nil, false), "Rename")},
				{metric: "ratio-rename-nogroup", op: viaStore(newStore(&Options{NoGroupCommit: true}, false), "RenamePlain")},
			}
			b.ResetTimer()
			for i := range b.N {
				// Rotate which goes first: a run is slowed by the journal
				// still writing back the previous one's work.
				for j := range variants {
					v := variants[(i+j)%len(variants)]
					t0 := time.Now()
					inParallel(b, conc, batch, v.op)
					v.took += time.Since(t0)
				}
			}
			msgs := float64(b.N * batch)
			naive := variants[0].took
			b.ReportMetric(float64(naive.Nanoseconds())/msgs, "naive-ns/msg")
			b.ReportMetric(float64(variants[1].took.Nanoseconds())/msgs, "maildir-ns/msg")
			for _, v := range variants[1:] {
				b.ReportMetric(float64(naive)/float64(v.took), v.metric)
			}
			b.ReportMetric(float64(s.syncers.fsyncs.Load())/msgs, "dirfsync/msg")
		})
	}
}

// inParallel runs n calls of op over conc goroutines.
func inParallel(b *testing.B, conc, n int, op func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// bigFolder makes a Maildir whose INBOX holds n messages in cur/ with
// Dovecot-style names, indexed once; it returns the Maildir path.
func bigFolder(b testing.TB, base string, n int) string {
	dir := filepath.Join(base, "Maildir")
	for _, sub := range []string{"tmp", "new", "cur"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o700)
	}
	body := []byte("Subject: x\r\n\r\nbody\r\n")
	names := newNamer(1, "bench")
	t0 := time.Unix(1700000000, 0)
	for i := range n {
		key := withSizes(names.next(t0.Add(time.Duration(i)*time.Millisecond)), int64(len(body)), int64(len(body)))
		info := ""
		if i%3 == 0 {
			info = "S"
		}
		if err := os.WriteFile(filepath.Join(dir, "cur", key+infoSep+info), body, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(base, &Options{SpecialFolders: []SpecialFolder{}})
	if err != nil {
		b.Fatal(err)
	}
	m, err := s.Open(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	f, _ := m.Folder(context.Background(), "INBOX")
	if snap, err := f.Snapshot(context.Background()); err != nil || len(snap.Messages) != n {
		b.Fatalf("setup: %v", err)
	}
	// Age the directories past the dirty window so the index is trusted.
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(dir, "cur"), old, old)
	os.Chtimes(filepath.Join(dir, "new"), old, old)
	f.Sync(context.Background())
	m.Close()
	s.Close()
	return dir
}

// BenchmarkBigFolder measures a 100,000-message INBOX: listing UID, flags
// and size cold (a fresh Store loading the index), warm (the Store already
// holds the folder), one APPEND of 10 KB and one flag change, each against
// its baseline: a readdir plus a stat of every file for the listings, the
// naive durable delivery (write, fsync, rename, fsync of the directory)
// for the APPEND, one bare rename(2) in the same cur/ for the flag change.
func BenchmarkBigFolder(b *testing.B) {
	const n = 100000
	base := b.TempDir()
	dir := bigFolder(b, base, n)
	ctx := context.Background()
	b.Run("list/baseline-readdir-stat", func(b *testing.B) {
		for range b.N {
			d, _ := os.Open(filepath.Join(dir, "cur"))
			names, _ := d.Readdirnames(-1)
			d.Close()
			for _, nm := range names {
				if _, err := os.Stat(filepath.Join(dir, "cur", nm)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("list/cold", func(b *testing.B) {
		for range b.N {
			s, _ := New(base, &Options{SpecialFolders: []SpecialFolder{}})
			m, err := s.Open(ctx, dir)
			if err != nil {
				b.Fatal(err)
			}
			f, _ := m.Folder(ctx, "INBOX")
			snap, err := f.Snapshot(ctx)
			if err != nil || len(snap.Messages) != n {
				b.Fatal(err)
			}
			// Drop the state without the final index write Close does,
			// which would not happen on every open.
			s.mu.Lock()
			delete(s.users, m.path)
			s.mu.Unlock()
		}
	})
	f := openFolder(b, base, dir, &Options{SpecialFolders: []SpecialFolder{}})
	f.Snapshot(ctx)
	b.Run("list/warm", func(b *testing.B) {
		for range b.N {
			snap, err := f.Snapshot(ctx)
			if err != nil || len(snap.Messages) != n {
				b.Fatal(err)
			}
		}
	})
	b.Run("flag/baseline-rename", func(b *testing.B) {
		names := []string{filepath.Join(dir, "cur", "bench:2,"), filepath.Join(dir, "cur", "bench:2,F")}
		os.WriteFile(names[0], nil, 0o600)
		for i := range b.N {
			if err := os.Rename(names[i%2], names[(i+1)%2]); err != nil {
				b.Fatal(err)
			}
		}
		os.Remove(names[b.N%2])
	})
	b.Run("append/baseline-naive", func(b *testing.B) {
		body := benchBody()
		for i := range b.N {
			if err := naiveDeliver(dir, fmt.Sprintf("naive.%d", i), body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append/maildir", func(b *testing.B) {
		f.Sync(ctx) // take in the baseline's files
		body := benchBody()
		b.ResetTimer()
		for range b.N {
			if _, err := f.Append(ctx, bytes.NewReader(body), nil, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("flag/maildir", func(b *testing.B) {
		f.Sync(ctx) // take in the baseline's renames in cur/
		b.ResetTimer()
		ops := []FlagOp{FlagsAdd, FlagsRemove}
		for i := range b.N {
			uid := uint32(50000 + i%1000)
			if _, err := f.StoreFlags(ctx, []uint32{uid}, ops[(i/1000)%2], []string{FlagFlagged}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPollNoChange measures the poll of a watched 100,000-message
// folder that nothing changed (what every node sharing a Maildir tree
// pays per watched folder per Options.PollInterval), against one bare
// stat(2) of its cur/ directory. The two take turns in batches of 64
// within each iteration, so the machine's drift hits both alike; the
// metrics are ns per stat, ns per poll and their ratio (poll/stat). It
// fails if a poll lists the folder.
func BenchmarkPollNoChange(b *testing.B) {
	const n, batch = 100000, 64
	base := b.TempDir()
	dir := bigFolder(b, base, n)
	ctx := context.Background()
	f := openFolder(b, base, dir, &Options{SpecialFolders: []SpecialFolder{}, NoWatcher: true, PollInterval: time.Hour})
	if _, err := f.Watch(ctx); err != nil {
		b.Fatal(err)
	}
	f.st.mu.Lock()
	scans := f.st.scans
	f.st.mu.Unlock()
	cur := filepath.Join(dir, "cur")
	var statT, pollT time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		for range batch {
			if _, err := os.Stat(cur); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for range batch {
			f.st.refresh(ctx) // what the poller's tick runs
		}
		statT += t1.Sub(t0)
		pollT += time.Since(t1)
	}
	b.StopTimer()
	ops := float64(b.N * batch)
	b.ReportMetric(float64(statT.Nanoseconds())/ops, "ns/stat")
	b.ReportMetric(float64(pollT.Nanoseconds())/ops, "ns/poll")
	b.ReportMetric(float64(pollT)/float64(statT), "poll/stat")
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	if f.st.scans != scans {
		b.Fatalf("%d polls of an unchanged folder listed it %d times", b.N*batch, f.st.scans-scans)
	}
}

// openFolder opens the INBOX of the Maildir at dir through a new Store on
// base with opts, both closed when b ends.
func openFolder(b testing.TB, base, dir string, opts *Options) *Folder {
	b.Helper()
	s, err := New(base, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	m, err := s.Open(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	f, err := m.Folder(context.Background(), "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	return f
}

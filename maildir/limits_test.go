package maildir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// exists reports whether folder name has a directory in m.
func exists(t *testing.T, m *Maildir, name string) bool {
	t.Helper()
	_, err := os.Stat(folderDir(m.Path(), name))
	return err == nil
}

func TestMaxFolders(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, &Options{MaxFolders: 3, SpecialFolders: []SpecialFolder{}})
	m := openUser(t, s)
	for _, n := range []string{"a", "b", "c"} {
		if err := m.CreateFolder(ctx, n); err != nil {
			t.Fatal(n, err)
		}
	}
	if err := m.CreateFolder(ctx, "d"); !errors.Is(err, ErrTooManyFolders) {
		t.Fatalf("4th CreateFolder: %v, want ErrTooManyFolders", err)
	}
	if exists(t, m, "d") {
		t.Fatal("refused folder d is on disk")
	}
	// An existing name is still ALREADYEXISTS, and a rename adds nothing.
	if err := m.CreateFolder(ctx, "a"); !errors.Is(err, ErrFolderExists) {
		t.Fatalf("CreateFolder(a): %v", err)
	}
	if err := m.RenameFolder(ctx, "a", "z"); err != nil {
		t.Fatal(err)
	}
	// A delivery creating a folder is refused the same way, whether the
	// Maildir is open in this Store or not.
	_, err := s.Deliver(ctx, m.Path(), "e", strings.NewReader(msg("x", 10)), &DeliverOptions{CreateFolder: true})
	if !errors.Is(err, ErrTooManyFolders) || exists(t, m, "e") {
		t.Fatalf("Deliver with CreateFolder past the limit: %v, exists %v", err, exists(t, m, "e"))
	}
	other, err := New(filepath.Dir(filepath.Dir(m.Path())), &Options{MaxFolders: 3, SpecialFolders: []SpecialFolder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Deliver(ctx, m.Path(), "e", strings.NewReader(msg("x", 10)), &DeliverOptions{CreateFolder: true}); !errors.Is(err, ErrTooManyFolders) || exists(t, m, "e") {
		t.Fatalf("Deliver through a Store without the Maildir open: %v", err)
	}
	// Delivery into INBOX and into existing folders goes on.
	deliver(t, s, m, "INBOX", msg("x", 10))
	deliver(t, s, m, "b", msg("x", 10))

	// A deletion makes room; a folder made by hand takes it again.
	if err := m.DeleteFolder(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(folderDir(m.Path(), "byhand"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateFolder(ctx, "d"); !errors.Is(err, ErrTooManyFolders) {
		t.Fatalf("CreateFolder after a folder made by hand: %v", err)
	}
	if err := os.Remove(folderDir(m.Path(), "byhand")); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateFolder(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deliver(ctx, m.Path(), "e", strings.NewReader(msg("x", 10)), &DeliverOptions{CreateFolder: true}); !errors.Is(err, ErrTooManyFolders) {
		t.Fatalf("Deliver after d took the room: %v", err)
	}
}

func TestMaxFoldersDefaultAndOff(t *testing.T) {
	s := newTestStore(t, nil)
	if got := s.maxFolders(); got != DefaultMaxFolders {
		t.Fatalf("default MaxFolders %d", got)
	}
	s = newTestStore(t, &Options{MaxFolders: -1})
	if got := s.maxFolders(); got != 0 {
		t.Fatalf("MaxFolders -1 gives %d", got)
	}
}

// Concurrent creations in one process never pass the limit together.
func TestMaxFoldersConcurrent(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, &Options{MaxFolders: 10, SpecialFolders: []SpecialFolder{}})
	m := openUser(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 30)
	for i := range errs {
		wg.Go(func() {
			if i%2 == 0 {
				errs[i] = m.CreateFolder(ctx, fmt.Sprintf("f%d", i))
				return
			}
			_, errs[i] = s.Deliver(ctx, m.Path(), fmt.Sprintf("f%d", i), strings.NewReader("\n"), &DeliverOptions{CreateFolder: true})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrTooManyFolders):
			t.Fatal(err)
		}
	}
	names, err := m.folderNames()
	if err != nil {
		t.Fatal(err)
	}
	if ok != 10 || len(names) != 10 {
		t.Fatalf("%d creations succeeded, %d folders on disk; want 10", ok, len(names))
	}
}

func TestMaxFolderDepth(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, &Options{SpecialFolders: []SpecialFolder{}})
	m := openUser(t, s)
	deep := strings.Repeat("a.", DefaultMaxFolderDepth-1) + "a" // 16 levels
	if err := m.CreateFolder(ctx, deep); err != nil {
		t.Fatal(err)
	}
	tooDeep := deep + ".b"
	if err := m.CreateFolder(ctx, tooDeep); !errors.Is(err, ErrFolderTooDeep) || exists(t, m, tooDeep) {
		t.Fatalf("17 levels: %v", err)
	}
	if _, err := s.Deliver(ctx, m.Path(), tooDeep, strings.NewReader("\n"), &DeliverOptions{CreateFolder: true}); !errors.Is(err, ErrFolderTooDeep) || exists(t, m, tooDeep) {
		t.Fatalf("delivery at 17 levels: %v", err)
	}
	// Renaming "a" under "x" would take its 16-level child to 17: nothing moves.
	if err := m.RenameFolder(ctx, "a", "x.a"); !errors.Is(err, ErrFolderTooDeep) {
		t.Fatalf("rename deepening a child: %v", err)
	}
	if !exists(t, m, deep) || exists(t, m, "x."+deep) {
		t.Fatal("a refused rename moved folders")
	}
	s2 := newTestStore(t, &Options{MaxFolderDepth: -1, SpecialFolders: []SpecialFolder{}})
	if err := openUser(t, s2).CreateFolder(ctx, tooDeep); err != nil {
		t.Fatalf("MaxFolderDepth -1: %v", err)
	}
	s3 := newTestStore(t, &Options{MaxFolderDepth: 2, SpecialFolders: []SpecialFolder{}})
	if err := openUser(t, s3).CreateFolder(ctx, "a.b.c"); !errors.Is(err, ErrFolderTooDeep) {
		t.Fatalf("MaxFolderDepth 2, 3 levels: %v", err)
	}
}

func TestMaxSubscriptions(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, &Options{SpecialFolders: []SpecialFolder{}})
	m := openUser(t, s)
	names := make([]string, maxSubscriptions)
	for i := range names {
		names[i] = fmt.Sprintf("gone%d", i) // need not exist
	}
	p := filepath.Join(m.Path(), subscriptionsName)
	if err := os.WriteFile(p, marshalSubscriptions(names), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Subscribe(ctx, "new", true); !errors.Is(err, ErrTooManySubscriptions) {
		t.Fatalf("subscription past the limit: %v", err)
	}
	if err := m.Subscribe(ctx, "gone5", true); err != nil {
		t.Fatalf("subscribing a subscribed name: %v", err)
	}
	if after, _ := os.ReadFile(p); string(after) != string(before) {
		t.Fatal("the subscriptions file changed")
	}
	if err := m.Subscribe(ctx, "gone5", false); err != nil {
		t.Fatal(err)
	}
	if err := m.Subscribe(ctx, "new", true); err != nil {
		t.Fatalf("subscription after an unsubscription: %v", err)
	}
	subs, err := m.Subscriptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != maxSubscriptions || subs[len(subs)-1] != "new" {
		t.Fatalf("%d subscriptions, last %q", len(subs), subs[len(subs)-1])
	}
}

// BenchmarkFolderLimitCheck measures a CREATE refused at MaxFolders in a
// Maildir of 10,000 folders: "held" checks the count the open Maildir
// keeps (one stat of its directory), "recount" lists the directory as a
// count without it would.
func BenchmarkFolderLimitCheck(b *testing.B) {
	ctx := context.Background()
	s := newTestStore(b, &Options{MaxFolders: DefaultMaxFolders, SpecialFolders: []SpecialFolder{}})
	m := openUser(b, s)
	for i := range DefaultMaxFolders {
		if err := os.Mkdir(folderDir(m.Path(), fmt.Sprintf("f%05d", i)), 0o700); err != nil {
			b.Fatal(err)
		}
	}
	for _, mode := range []string{"held", "recount"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				if mode == "recount" {
					m.u.count.mu.Lock()
					m.u.count.counted = false
					m.u.count.mu.Unlock()
				}
				if err := m.CreateFolder(ctx, "one.more"); !errors.Is(err, ErrTooManyFolders) {
					b.Fatal(err)
				}
			}
		})
	}
}

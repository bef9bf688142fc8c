package maildir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// waitSignal fails unless ch receives within 10 s (a bound on a broken
// watch, not a synchronisation).
func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no signal", what)
	}
}

// TestWatchFolders: a folder created, renamed or removed behind the
// Store's back (mkdir, mv, rm in the Maildir), and the subscriptions
// file rewritten by another program, are signalled, through fsnotify
// and through the poll alone; Close closes the channel.
func TestWatchFolders(t *testing.T) {
	for _, noWatcher := range []bool{false, true} {
		name := "fsnotify"
		if noWatcher {
			name = "poll"
		}
		t.Run(name, func(t *testing.T) {
			s := newTestStore(t, &Options{NoWatcher: noWatcher, PollInterval: 20 * time.Millisecond})
			md := openUser(t, s)
			ch, err := md.WatchFolders(context.Background())
			folderWatchMust(t, err)
			dir := filepath.Join(md.Path(), ".Ext")
			for _, sub := range []string{"cur", "new", "tmp"} {
				folderWatchMust(t, os.MkdirAll(filepath.Join(dir, sub), 0o700))
			}
			waitSignal(t, ch, "mkdir")
			folders, err := md.Folders(context.Background())
			folderWatchMust(t, err)
			found := false
			for _, f := range folders {
				found = found || f.Name == "Ext" && !f.NonExistent
			}
			if !found {
				t.Fatalf("Ext not listed after the signal: %+v", folders)
			}
			folderWatchMust(t, os.Rename(dir, filepath.Join(md.Path(), ".Ext2")))
			waitSignal(t, ch, "rename")
			folderWatchMust(t, os.WriteFile(filepath.Join(md.Path(), "subscriptions"), []byte("V\t2\n\nExt2\n"), 0o600))
			waitSignal(t, ch, "subscriptions")
			folderWatchMust(t, os.RemoveAll(filepath.Join(md.Path(), ".Ext2")))
			waitSignal(t, ch, "rm")
			s.Close()
			for range ch {
			}
			if _, err := md.WatchFolders(context.Background()); !errors.Is(err, ErrClosed) {
				t.Fatalf("WatchFolders after Close: %v", err)
			}
		})
	}
}

// TestWatchFoldersContext: the watch ends with its context.
func TestWatchFoldersContext(t *testing.T) {
	s := newTestStore(t, &Options{PollInterval: 20 * time.Millisecond})
	md := openUser(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := md.WatchFolders(ctx)
	folderWatchMust(t, err)
	cancel()
	for range ch {
	}
}

func folderWatchMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestWatchFoldersReady: a folder directory made empty is signalled, and
// again once its cur/, new/ and tmp/ exist (which the poll sees: they
// are not entries of the Maildir's directory); FolderReady says which.
func TestWatchFoldersReady(t *testing.T) {
	s := newTestStore(t, &Options{PollInterval: 20 * time.Millisecond})
	md := openUser(t, s)
	ch, err := md.WatchFolders(t.Context())
	folderWatchMust(t, err)
	dir := filepath.Join(md.Path(), ".Half")
	folderWatchMust(t, os.Mkdir(dir, 0o700))
	waitSignal(t, ch, "mkdir")
	if md.FolderReady("Half") {
		t.Fatal("an empty folder directory is ready")
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		folderWatchMust(t, os.Mkdir(filepath.Join(dir, sub), 0o700))
	}
	waitSignal(t, ch, "subdirectories")
	if !md.FolderReady("Half") || !md.FolderReady("INBOX") {
		t.Fatal("a complete folder is not ready")
	}
}

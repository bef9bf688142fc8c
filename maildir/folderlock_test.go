package maildir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// LockFolder is the lock the Store's writers take: an Append waits for
// it, and finds it released by the holder; a second holder times out.
func TestLockFolderHoldsOffWriters(t *testing.T) {
	s := newTestStore(t, &Options{Hostname: "mx.test"})
	m := openUser(t, s)
	in := folder(t, m, "INBOX")
	ctx := context.Background()
	if _, err := in.Append(ctx, strings.NewReader("Subject: one\r\n\r\nx\r\n"), nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	unlock, err := LockFolder(ctx, m.Path(), "mx.test")
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(m.Path(), "dovecot-uidlist.lock")); err != nil || !strings.HasSuffix(string(data), ":mx.test") {
		t.Fatalf("lock file: %q, %v", data, err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = LockFolder(short, m.Path(), "mx.test")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second LockFolder: %v", err)
	}
	appended := make(chan error, 1)
	go func() {
		_, err := in.Append(ctx, strings.NewReader("Subject: two\r\n\r\nx\r\n"), nil, time.Now())
		appended <- err
	}()
	select {
	case err := <-appended:
		t.Fatalf("Append went ahead under the folder lock: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	if st, err := in.Status(ctx); err != nil || st.Messages != 2 {
		t.Fatalf("status %+v, %v", st, err)
	}
}

package imap

import (
	"io"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestMovedHook: COPY and MOVE tell Options.Moved of the copies made,
// with the folders and the messages' bytes, before the reply.
func TestMovedHook(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", "Subject: one\r\n\r\nspam\r\n")
	st.deliver("alice@local.example", "Junk", "Subject: two\r\n\r\nham\r\n")
	var mu sync.Mutex
	var got []string
	opts := st.options()
	opts.Moved = func(user, from, to string, msgs []*os.File) {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range msgs {
			b, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				t.Error(err)
			}
			got = append(got, user+" "+from+"→"+to+" "+strings.SplitN(string(b), "\r\n", 2)[0])
		}
	}
	_, addr := st.serve(opts)
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	cl.ok("MOVE 1 Junk")
	cl.ok("SELECT Junk")
	cl.ok("UID COPY 1 INBOX")
	mu.Lock()
	defer mu.Unlock()
	want := "alice@local.example INBOX→Junk Subject: one|alice@local.example Junk→INBOX Subject: two"
	if strings.Join(got, "|") != want {
		t.Errorf("Moved saw %q, want %q", strings.Join(got, "|"), want)
	}
}

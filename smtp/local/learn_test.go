package local_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailagent/mailagent/smtp/local"
)

// TestLearnQueueRspamd: jobs reach rspamd's controller endpoints with
// the password and the message, a failure is retried, and Submit never
// waits for the controller.
func TestLearnQueueRspamd(t *testing.T) {
	var mu sync.Mutex
	var got []string
	fails := 1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Password")+" "+r.Header.Get("Deliver-To")+" "+string(b))
		w.Write([]byte(`{"success":true}`))
	}))
	defer srv.Close()
	q := local.NewLearnQueue(&local.RspamdLearner{URL: srv.URL, Password: "pw"}, local.LearnQueueOptions{Backoff: time.Millisecond})
	defer q.Close()
	done := make(chan struct{}, 2)
	for _, spam := range []bool{true, false} {
		msg := "Subject: spam? " + map[bool]string{true: "yes", false: "no"}[spam] + "\r\n\r\nx\r\n"
		ok := q.Submit(local.LearnJob{User: "alice@local.example", Spam: spam,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(msg)), nil },
			Done: func() { done <- struct{}{} }})
		if !ok {
			t.Fatal("Submit refused")
		}
	}
	<-done
	<-done
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"POST /learnspam pw alice@local.example Subject: spam? yes\r\n\r\nx\r\n",
		"POST /learnham pw alice@local.example Subject: spam? no\r\n\r\nx\r\n",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("controller got\n%q\nwant\n%q", got, want)
	}
}

// TestLearnQueueGivesUp: a job that keeps failing is tried Attempts
// times, then dropped.
func TestLearnQueueGivesUp(t *testing.T) {
	var n int
	var mu sync.Mutex
	l := learnerFunc(func() error { mu.Lock(); n++; mu.Unlock(); return io.ErrUnexpectedEOF })
	q := local.NewLearnQueue(l, local.LearnQueueOptions{Attempts: 3, Backoff: time.Millisecond})
	defer q.Close()
	done := make(chan struct{})
	q.Submit(local.LearnJob{Spam: true, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x")), nil },
		Done: func() { close(done) }})
	<-done
	mu.Lock()
	defer mu.Unlock()
	if n != 3 {
		t.Errorf("tried %d times, want 3", n)
	}
}

type learnerFunc func() error

func (f learnerFunc) Learn(ctx context.Context, user string, spam bool, msg io.Reader) error {
	return f()
}

func TestLearnFromMove(t *testing.T) {
	for _, c := range []struct {
		from, to    string
		spam, learn bool
	}{
		{"INBOX", "Junk", true, true},
		{"Archive", "Junk", true, true},
		{"Junk", "INBOX", false, true},
		{"Junk", "Work", false, true},
		{"Junk", "Trash", false, false},
		{"Junk", "Junk", false, false},
		{"INBOX", "Trash", false, false},
		{"INBOX", "Archive", false, false},
	} {
		spam, learn := local.LearnFromMove(c.from, c.to, "Junk", "Trash")
		if spam != c.spam || learn != c.learn {
			t.Errorf("%s → %s: spam %v learn %v, want %v %v", c.from, c.to, spam, learn, c.spam, c.learn)
		}
	}
}

// TestLearnQueueSurvivesRestart: with Dir set, jobs submitted while the
// controller is down are kept on disk through a restart of the queue
// and reach the controller once it is back; the spool is empty after.
func TestLearnQueueSurvivesRestart(t *testing.T) {
	var mu sync.Mutex
	down := true
	var got []string
	failed := make(chan struct{}, 10)
	learnt := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "no backend", http.StatusServiceUnavailable)
			failed <- struct{}{}
			return
		}
		got = append(got, r.URL.Path+" "+r.Header.Get("Deliver-To")+" "+string(b))
		w.Write([]byte(`{"success":true}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	// The queue removes a job as soon as Learn returns: learnt is
	// signalled after that return.
	learner := signalLearner{&local.RspamdLearner{URL: srv.URL}, learnt}
	q, err := local.OpenLearnQueue(learner, local.LearnQueueOptions{Dir: dir, Backoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	spooled := make(chan struct{}, 2)
	for i, spam := range []bool{true, false} {
		msg := fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i)
		if !q.Submit(local.LearnJob{User: "alice@local.example", Spam: spam,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(msg)), nil },
			Done: func() { spooled <- struct{}{} }}) {
			t.Fatal("Submit refused")
		}
	}
	for range 2 {
		<-spooled
		<-failed
	}
	q.Close()
	if n := spoolFiles(t, dir); n != 2 {
		t.Fatalf("%d jobs in the spool after the restart, want 2", n)
	}

	mu.Lock()
	down = false
	mu.Unlock()
	q, err = local.OpenLearnQueue(learner, local.LearnQueueOptions{Dir: dir, Backoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	<-learnt
	<-learnt
	q.Close()
	mu.Lock()
	defer mu.Unlock()
	want := "/learnspam alice@local.example Subject: 0\r\n\r\nx\r\n|/learnham alice@local.example Subject: 1\r\n\r\nx\r\n"
	if strings.Join(got, "|") != want {
		t.Errorf("controller got %q, want %q", got, want)
	}
	if n := spoolFiles(t, dir); n != 0 {
		t.Errorf("%d jobs left in the spool after they were learnt", n)
	}
}

// TestLearnQueueSpoolBounded: a message over MaxSize is not spooled,
// and the spool holds at most Capacity jobs.
func TestLearnQueueSpoolBounded(t *testing.T) {
	dir := t.TempDir()
	l := learnerFunc(func() error { return io.ErrUnexpectedEOF })
	q, err := local.OpenLearnQueue(l, local.LearnQueueOptions{Dir: dir, Capacity: 2, MaxSize: 10, Backoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 1)
	for _, msg := range []string{"too large a message", "a", "b", "c"} {
		q.Submit(local.LearnJob{Spam: true, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(msg)), nil },
			Done: func() { done <- struct{}{} }})
		<-done
	}
	q.Close()
	if n := spoolFiles(t, dir); n != 2 {
		t.Errorf("%d jobs in the spool, want 2 (capacity)", n)
	}
}

func spoolFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".learn") {
			n++
		}
	}
	return n
}

// signalLearner signals on done after each successful Learn.
type signalLearner struct {
	l    local.Learner
	done chan struct{}
}

func (s signalLearner) Learn(ctx context.Context, user string, spam bool, msg io.Reader) error {
	err := s.l.Learn(ctx, user, spam, msg)
	if err == nil {
		s.done <- struct{}{}
	}
	return err
}

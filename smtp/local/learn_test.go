package local_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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

package queue

import (
	"context"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

// TestAttemptHistory: every attempt is kept per recipient with its time,
// the server that replied and the reply, up to maxHistory (the newest);
// a connection failure has no remote server.
func TestAttemptHistory(t *testing.T) {
	srv := outboundtest.Start(t, outboundtest.Options{RcptReply: func(r string) error {
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 2, 0}, Message: "greylisted " + r}
	}})
	f := newFixture(t, srv.Port, nil)
	id := f.enqueue(t, "alice@a.test", []string{"bob@b.test"}, signed)
	var times []time.Time
	for range maxHistory + 2 {
		in, err := f.q.Inspect(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Set(in.NextAttempt)
		times = append(times, in.NextAttempt)
		f.runDue(t)
	}
	in, err := f.q.Inspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if in.Attempts != maxHistory+2 {
		t.Fatalf("%d attempts, want %d", in.Attempts, maxHistory+2)
	}
	got := in.Recipients[0].Attempts
	if len(got) != maxHistory {
		t.Fatalf("%d attempts kept, want %d", len(got), maxHistory)
	}
	for i, a := range got {
		want := times[i+2]
		if !a.Time.Equal(want) || a.Remote != "mx.b.test[127.0.0.1]" || a.TLS != "" ||
			a.Reply.Code != 451 || a.Reply.EnhancedCode != (gosmtp.EnhancedCode{4, 2, 0}) || a.Reply.Message != "greylisted bob@b.test" {
			t.Errorf("attempt %d: %+v, want at %v", i, a, want)
		}
	}

	// A connection failure: no server replied.
	f2 := newFixture(t, portOf(t, deadPort(t)), nil)
	id2 := f2.enqueue(t, "alice@a.test", []string{"bob@b.test"}, signed)
	f2.runDue(t)
	in, err = f2.q.Inspect(context.Background(), id2)
	if err != nil {
		t.Fatal(err)
	}
	if a := in.Recipients[0].Attempts; len(a) != 1 || a[0].Remote != "" || a[0].Reply.EnhancedCode != (gosmtp.EnhancedCode{4, 4, 1}) {
		t.Errorf("attempts after a connection failure: %+v", a)
	}
}

// TestHistoryKeepsMetaReadable: a message whose history would make its
// metadata too big to read back loses the oldest attempts instead.
func TestHistoryKeepsMetaReadable(t *testing.T) {
	m := &meta{ID: newID(time.Unix(1, 0)), From: "a@a.test", Arrived: time.Unix(1, 0)}
	long := string(make([]byte, maxHistoryReply))
	for i := range maxRecipients {
		r := rcptState{Addr: "r" + string(rune('a'+i%26)) + "@b.test", State: Queued}
		for range maxHistory {
			r.record(attempt{At: time.Unix(2, 0), Code: 451, Reply: long})
		}
		m.Recipients = append(m.Recipients, r)
	}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > maxMetaSize {
		t.Fatalf("metadata of %d bytes, limit %d", len(b), maxMetaSize)
	}
	if _, err := decodeMeta(b); err != nil {
		t.Fatal(err)
	}
}

package queue

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
)

// TestBounceTarget: New builds the notifications' target from the queue
// itself, before it returns, and a notification goes there; an error
// from the builder fails New, and Bounces with BounceTarget is refused.
func TestBounceTarget(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	var given *Queue
	q, err := New(Options{Dir: t.TempDir(), Courier: Outbound(nil), Hostname: "mta.a.test",
		BounceTarget: func(q *Queue) (mail.Target, error) {
			given = q
			return rec, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if given != q {
		t.Fatalf("BounceTarget got %p, want the queue New returned (%p)", given, q)
	}
	ctx := context.Background()
	env := &mail.Envelope{ID: "B1", From: "alice@a.test", Recipients: []string{"bob@b.test"}}
	d, err := q.Bounce(ctx, env, mail.BytesBody([]byte("Subject: hi\r\n\r\nx\r\n")),
		[]mail.Failure{{Rcpt: "bob@b.test", Err: &mail.Error{Code: 552, EnhancedCode: [3]int{5, 2, 2}, Message: "Mailbox full"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := rec.all()
	if len(got) != 1 || got[0].env.From != "" || !strings.Contains(string(got[0].data), "Mailbox full") {
		t.Fatalf("notifications at the built target: %+v", got)
	}

	boom := errors.New("no router")
	if _, err := New(Options{Dir: t.TempDir(), Courier: Outbound(nil),
		BounceTarget: func(*Queue) (mail.Target, error) { return nil, boom }}); !errors.Is(err, boom) {
		t.Fatalf("builder error: New returned %v", err)
	}
	if _, err := New(Options{Dir: t.TempDir(), Courier: Outbound(nil), Bounces: rec,
		BounceTarget: func(*Queue) (mail.Target, error) { return rec, nil }}); err == nil {
		t.Fatal("Bounces and BounceTarget together: New accepted them")
	}
}

package queue

import (
	"context"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
)

// TestWithdraw: a recipient withdrawn between Body and Commit is not in
// the queued message; the others are.
func TestWithdraw(t *testing.T) {
	f := newFixture(t, 1, nil)
	ctx := context.Background()
	d, err := f.q.Start(ctx, &mail.Envelope{From: "a@a.test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"x@b.test", "y@b.test", "z@b.test"} {
		if err := d.AddRecipient(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Body(ctx, bytesBodyT("Subject: w\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	w := d.(mail.Withdrawer)
	if err := w.Withdraw(ctx, "y@b.test"); err != nil {
		t.Fatal(err)
	}
	if err := w.Withdraw(ctx, "nobody@b.test"); err == nil {
		t.Fatal("withdrew a recipient never added")
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	in, err := f.q.Inspect(ctx, d.(interface{ ID() string }).ID())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range in.Recipients {
		got = append(got, r.Address)
	}
	if len(got) != 2 || got[0] != "x@b.test" || got[1] != "z@b.test" {
		t.Fatalf("queued for %v", got)
	}
	if err := w.Withdraw(ctx, "x@b.test"); err == nil {
		t.Fatal("withdrew after Commit")
	}
}

package queue

import (
	"context"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

// TestQuarantine: a message through the Quarantine target is queued on
// hold: listed as held, not delivered, and delivered once released.
func TestQuarantine(t *testing.T) {
	addr := deadPort(t)
	f := newFixture(t, portOf(t, addr), nil)
	srv := outboundtest.Start(t, outboundtest.Options{Addr: addr})
	ctx := context.Background()
	qt, err := f.q.Quarantine("")
	if err != nil {
		t.Fatal(err)
	}
	d, err := qt.Start(ctx, &mail.Envelope{From: "alice@a.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AddRecipient(ctx, "bob@b.test"); err != nil {
		t.Fatal(err)
	}
	if err := d.Body(ctx, bytesBodyT("Subject: quarantined\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	id := d.(interface{ ID() string }).ID()
	f.runDue(t)
	if msgs := srv.Messages(); len(msgs) != 0 {
		t.Fatalf("quarantined message delivered: %+v", msgs)
	}
	if in, err := f.q.Inspect(ctx, id); err != nil || !in.Held {
		t.Fatalf("Inspect: %+v, %v; want held", in, err)
	}
	if err := f.q.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	f.runDue(t)
	if msgs := srv.Messages(); len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Subject: quarantined") {
		t.Fatalf("after Release: %+v", msgs)
	}
	if _, err := f.q.Quarantine("bad hop"); err == nil {
		t.Errorf("Quarantine accepted a bad hop")
	}
}

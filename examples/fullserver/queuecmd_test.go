package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/outbound"
	"github.com/mailagent/mailagent/smtp/queue"
)

// enqueue puts one message in the spool of data directory dir, as a
// server would, and returns its ID.
func enqueue(t *testing.T, dir string) string {
	t.Helper()
	client, err := outbound.New(outbound.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(queue.Options{Dir: filepath.Join(dir, "queue"), Courier: queue.Outbound(client)})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	id, err := q.Enqueue(context.Background(), &mail.Envelope{From: "alice@a.test", Recipients: []string{"bob@b.test"}},
		mail.BytesBody([]byte("Subject: queued\r\n\r\nbody\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Without a running server the queue commands work on the spool itself.
func TestQueueCommandsOffline(t *testing.T) {
	dir := t.TempDir()
	id := enqueue(t, dir)
	out := ok(t, dir, "", "queue", "list")
	if !strings.Contains(out, id+" ") || !strings.Contains(out, "  alice@a.test\n") || !strings.Contains(out, "      bob@b.test\n") ||
		!strings.HasSuffix(out, "-- 1 Kbytes in 1 Request.\n") {
		t.Fatalf("queue list:\n%s", out)
	}
	if out := ok(t, dir, "", "queue", "show", id); !strings.Contains(out, "recipient: bob@b.test queued") {
		t.Fatalf("queue show:\n%s", out)
	}
	ok(t, dir, "", "queue", "hold", id)
	if out := ok(t, dir, "", "queue", "list"); !strings.Contains(out, id+"! ") {
		t.Fatalf("held message not shown held:\n%s", out)
	}
	ok(t, dir, "", "queue", "release", id)
	if out := ok(t, dir, "", "queue", "flush"); !strings.Contains(out, "1 message(s) due now") {
		t.Fatalf("queue flush: %s", out)
	}
	ok(t, dir, "", "queue", "delete", id)
	if out := ok(t, dir, "", "queue", "list"); out != "Mail queue is empty\n" {
		t.Fatalf("deleted message still listed:\n%s", out)
	}
	fails(t, dir, "", 1, "", "queue", "show", id)
	fails(t, dir, "", 2, "queue show needs one message ID", "queue", "show")
}

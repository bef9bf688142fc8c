package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/smtp/outbound/outboundtest"
)

// TestQATwoNodesAdoptSpool runs two servers as two nodes of one
// installation: one SQLite directory, one Maildir tree and a spool
// each, each spool in the other's queue.peers. Node A relays through a
// host where nothing listens, so a message submitted to it waits in its
// spool; A is killed with SIGKILL, and node B, whose relay answers,
// adopts A's spool and delivers the message, once, leaving A's spool
// empty.
func TestQATwoNodesAdoptSpool(t *testing.T) {
	t.Parallel()
	bin := qaBinary(t)
	shared := t.TempDir()
	relay := outboundtest.Start(t, outboundtest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	spool := func(name string) string { return filepath.Join(shared, "spool", name) }
	node := func(name, relayHost, peer string) *qaServer {
		dir := filepath.Join(shared, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		extra := fmt.Sprintf(`[store]
dsn = %q
[maildir]
base = %q
watcher = false
[queue]
dir = %q
peers = [%q]
adopt_interval = "50ms"
[relay]
host = %q
`, filepath.Join(shared, "mailagent.db"), filepath.Join(shared, "mail"), spool(name), spool(peer), relayHost)
		return qaStart(t, bin, qaConfig(t, dir, extra))
	}
	a := node("a", dead, "b")
	if a.password == "" {
		t.Fatal("the first node did not create the first user")
	}
	b := node("b", fmt.Sprintf("127.0.0.1:%d", relay.Port), "a")
	if b.password != "" {
		t.Fatal("the second node created a first user on a directory that has one")
	}

	qaSubmit(t, a.addrs["submissions"], "postmaster@localhost", a.password, "postmaster@localhost", "carol@remote.test",
		"Subject: adopted\n\nwaits on node a\n")
	// Submission answered 250: the message is in a's spool.
	if out := a.admin(t, "", "queue", "list"); !strings.Contains(out, "carol@remote.test") {
		t.Fatalf("node a's queue:\n%s", out)
	}
	if relay.Count() != 0 {
		t.Fatal("the relay got the message while node a held it")
	}
	a.proc.Kill()
	a.exited <- <-a.exited

	msgs := relay.Wait(t, 1, 30*time.Second)
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Subject: adopted") || msgs[0].To[0] != "carol@remote.test" {
		t.Fatalf("relay got %d messages: %+v", len(msgs), msgs)
	}
	if ents, _ := os.ReadDir(filepath.Join(spool("a"), "msg")); len(ents) != 0 {
		t.Fatalf("node a's spool keeps %d files", len(ents))
	}
	if out := b.admin(t, "", "queue", "list"); strings.Contains(out, "carol@remote.test") {
		t.Fatalf("node b still queues the message:\n%s", out)
	}
}

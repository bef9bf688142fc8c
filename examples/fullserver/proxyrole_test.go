package main

import (
	"context"
	"testing"
)

func TestUserMoveAndDomainHost(t *testing.T) {
	dir := t.TempDir()
	ok(t, dir, "", "domain", "add", "example.org")
	ok(t, dir, "a long enough password\n", "user", "add", "alice@example.org")
	ok(t, dir, "", "domain", "host", "example.org", "10.0.0.11")
	// No server runs: the directory changes, no session is ended.
	if out := ok(t, dir, "", "user", "move", "Alice@example.org", "10.0.0.12"); out != "Alice@example.org: host 10.0.0.12, open sessions ended: 0\n" {
		t.Fatalf("user move said %q", out)
	}
	st := openDir(t, dir)
	ctx := context.Background()
	for addr, want := range map[string]string{"alice@example.org": "10.0.0.12", "bob@example.org": "10.0.0.11"} {
		if got, err := st.Home(ctx, addr); err != nil || got != want {
			t.Errorf("Home(%s) = %q, %v; want %q", addr, got, err, want)
		}
	}
	fails(t, dir, "", 1, "host", "user", "move", "alice@example.org", "bad host\r\nX")
	fails(t, dir, "", 1, "not found", "user", "move", "nobody@example.org", "10.0.0.12")
	fails(t, dir, "", 1, "not found", "domain", "host", "other.example", "10.0.0.12")
}

package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestHome(t *testing.T) {
	forEachDialect(t, &Options{CacheTTL: time.Hour}, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		must(t, s.AddDomain(ctx, "example.org"))
		must(t, s.AddDomain(ctx, "bücher.example"))
		must(t, s.AddUser(ctx, &User{Address: "alice@example.org", PasswordHash: "x"}))
		must(t, s.AddUser(ctx, &User{Address: "bob@example.org", PasswordHash: "x"}))
		home := func(addr, want string) {
			t.Helper()
			if got, err := s.Home(ctx, addr); err != nil || got != want {
				t.Fatalf("Home(%s) = %q, %v; want %q", addr, got, err, want)
			}
		}
		home("alice@example.org", "")
		must(t, s.SetDomainHost(ctx, "EXAMPLE.org", "10.0.0.2"))
		home("alice@example.org", "10.0.0.2")
		home("nobody@example.org", "10.0.0.2")
		// The write clears the cached answer of the line above.
		must(t, s.SetUserHost(ctx, "Alice@example.org", "[::1]:1143"))
		home("ALICE@example.org", "[::1]:1143")
		home("bob@example.org", "10.0.0.2")
		must(t, s.SetDomainHost(ctx, "xn--bcher-kva.example", "b2.example.net"))
		home("carol@bücher.example", "b2.example.net")
		must(t, s.SetUserHost(ctx, "alice@example.org", ""))
		home("alice@example.org", "10.0.0.2")
		home("x@elsewhere.example", "")

		if err := s.SetUserHost(ctx, "nobody@example.org", "h"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("SetUserHost of unknown user: %v", err)
		}
		if err := s.SetDomainHost(ctx, "other.example", "h"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("SetDomainHost of unknown domain: %v", err)
		}
		for _, h := range []string{"a b", "h\r\nX: y", "h:", "h:port", "/tmp/x", string(make([]byte, 300))} {
			if err := s.SetUserHost(ctx, "bob@example.org", h); err == nil {
				t.Errorf("host %q accepted", h)
			}
		}
		home("bob@example.org", "10.0.0.2")
	})
}

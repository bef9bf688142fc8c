package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// resolveFixture fills a directory with the users and forwardings the
// Resolve table refers to.
func resolveFixture(t *testing.T, s *SQL) {
	t.Helper()
	ctx := context.Background()
	for _, d := range []string{"example.org", "other.example", "bücher.example"} {
		must(t, s.AddDomain(ctx, d))
	}
	for _, u := range []string{"alice", "bob", "dave", "sales", "用户", "x+y"} {
		must(t, s.AddUser(ctx, &User{Address: u + "@example.org", PasswordHash: "h"}))
	}
	must(t, s.AddUser(ctx, &User{Address: "carol@example.org", PasswordHash: "h", Disabled: true}))
	must(t, s.AddUser(ctx, &User{Address: "real@other.example", PasswordHash: "h"}))
	must(t, s.AddUser(ctx, &User{Address: "Jörg@bücher.example", PasswordHash: "h", Maildir: "/srv/mail/joerg"}))
	fw := map[string][]string{
		"info@example.org":    {"alice@example.org", "bob@example.org"},
		"team@example.org":    {"info@example.org", "carol@example.org"},
		"sales@example.org":   {"sales@example.org", "ext@remote.example"},
		"keep@example.org":    {"keep@example.org"},
		"loop1@example.org":   {"loop2@example.org"},
		"loop2@example.org":   {"loop1@example.org"},
		"loopa@example.org":   {"loopb@example.org", "alice@example.org"},
		"loopb@example.org":   {"loopa@example.org"},
		"dup@example.org":     {"alice@example.org", "Alice@EXAMPLE.org", "info@example.org"},
		"r@example.org":       {"ext@remote.example", "EXT@Remote.Example", "x@xn--bcher-kva.example"},
		"gone@example.org":    {"nobody@example.org", "carol@example.org"},
		"half@example.org":    {"nobody@example.org", "bob@example.org"},
		"@other.example":      {"dave@example.org"},
		"wide@example.org":    {"a1@remote.example", "a2@remote.example", "a3@remote.example", "a4@remote.example"},
		"c0@example.org":      {"c1@example.org"},
		"team2@example.org":   {"sales2@example.org"},
		"sales2@example.org":  {"ext@remote.example"},
		"c1@example.org":      {"c2@example.org"},
		"c2@example.org":      {"c3@example.org"},
		"c3@example.org":      {"c4@example.org"},
		"c4@example.org":      {"alice@example.org"},
		"alice@other.example": {"alice@example.org"},
		"b.x@other.example":   {"bob@example.org"},
		"Jörg@bücher.example": {"Jörg@bücher.example", "alice@example.org"},
	}
	for src, dst := range fw {
		must(t, s.AddForwarding(ctx, src, dst))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	cases := []struct {
		name   string
		addr   string
		opts   ResolveOptions
		local  []string
		remote []string
		failed int
		err    error
	}{
		{name: "user", addr: "alice@example.org", local: []string{"alice@example.org"}},
		{name: "case-insensitive", addr: "ALICE@Example.ORG", local: []string{"alice@example.org"}},
		{name: "forwarding fan-out", addr: "info@example.org", local: []string{"alice@example.org", "bob@example.org"}},
		{name: "nested with disabled member", addr: "team@example.org", local: []string{"alice@example.org", "bob@example.org"}, failed: 1},
		{name: "self in list keeps local copy", addr: "sales@example.org", local: []string{"sales@example.org"}, remote: []string{"ext@remote.example"}},
		{name: "self-only list without mailbox", addr: "keep@example.org", err: ErrNotFound},
		{name: "loop without mailbox", addr: "loop1@example.org", err: ErrLoop},
		{name: "loop with mailbox", addr: "loopa@example.org", local: []string{"alice@example.org"}, failed: 1},
		{name: "duplicates once", addr: "dup@example.org", local: []string{"alice@example.org", "bob@example.org"}},
		{name: "remote de-duplicated, unknown local member", addr: "r@example.org", remote: []string{"ext@remote.example"}, failed: 1},
		{name: "all members failed", addr: "gone@example.org", err: ErrNotFound},
		{name: "partly failed", addr: "half@example.org", local: []string{"bob@example.org"}, failed: 1},
		{name: "catch-all", addr: "anyone@other.example", local: []string{"dave@example.org"}},
		{name: "exact user beats catch-all", addr: "real@other.example", local: []string{"real@other.example"}},
		{name: "exact forwarding beats catch-all", addr: "alice@other.example", local: []string{"alice@example.org"}},
		{name: "subaddress to user", addr: "alice+news@example.org", local: []string{"alice@example.org"}},
		{name: "subaddress to forwarding", addr: "info+x@example.org", local: []string{"alice@example.org", "bob@example.org"}},
		{name: "subaddress to catch-all", addr: "real+x@other.example", local: []string{"real@other.example"}},
		{name: "exact beats subaddress", addr: "x+y@example.org", local: []string{"x+y@example.org"}},
		{name: "subaddress off", addr: "alice+news@example.org", opts: ResolveOptions{NoSubaddress: true}, err: ErrNotFound},
		{name: "other delimiter", addr: "bob-x@example.org", opts: ResolveOptions{Delimiters: "+-"}, local: []string{"bob@example.org"}},
		{name: "dash not a delimiter by default", addr: "bob-x@example.org", err: ErrNotFound},
		{name: "dotted local part and catch-all", addr: "b.x+y@other.example", local: []string{"bob@example.org"}},
		{name: "disabled user", addr: "carol@example.org", err: ErrDisabled},
		{name: "unknown user", addr: "nobody@example.org", err: ErrNotFound},
		{name: "foreign domain", addr: "someone@remote.example", err: ErrNotLocal},
		{name: "depth limit", addr: "c0@example.org", opts: ResolveOptions{MaxDepth: 3}, err: ErrLimit},
		{name: "depth within limit", addr: "c0@example.org", opts: ResolveOptions{MaxDepth: 5}, local: []string{"alice@example.org"}},
		{name: "remote at the depth limit", addr: "team2@example.org", opts: ResolveOptions{MaxDepth: 1}, remote: []string{"ext@remote.example"}},
		{name: "fan-out limit", addr: "wide@example.org", opts: ResolveOptions{MaxFanOut: 3}, err: ErrLimit},
		{name: "fan-out within limit", addr: "wide@example.org", opts: ResolveOptions{MaxFanOut: 4},
			remote: []string{"a1@remote.example", "a2@remote.example", "a3@remote.example", "a4@remote.example"}},
		{name: "IDNA A-label input", addr: "jörg@xn--bcher-kva.example", local: []string{"Jörg@bücher.example", "alice@example.org"}},
		{name: "SMTPUTF8 local part", addr: "用户@example.org", local: []string{"用户@example.org"}},
		{name: "SMTPUTF8 subaddress", addr: "用户+tag@example.org", local: []string{"用户@example.org"}},
	}
	forEachDialect(t, nil, func(t *testing.T, s *SQL) {
		resolveFixture(t, s)
		// The SQL directory answers each step in one query; through the
		// bare Directory interface Resolve makes one call per lookup.
		// Both must agree.
		dirs := map[string]Directory{"step": s, "directory": onlyDirectory{s}}
		for _, c := range cases {
			for dn, dir := range dirs {
				t.Run(c.name+"/"+dn, func(t *testing.T) {
					r, err := Resolve(context.Background(), dir, c.addr, c.opts)
					if c.err != nil {
						if !errors.Is(err, c.err) {
							t.Fatalf("Resolve(%s) = %+v, %v; want %v", c.addr, r, err, c.err)
						}
						return
					}
					if err != nil {
						t.Fatalf("Resolve(%s): %v", c.addr, err)
					}
					var local []string
					for _, m := range r.Local {
						local = append(local, m.Address)
					}
					slices.Sort(local)
					remote := slices.Sorted(slices.Values(r.Remote))
					if fmt.Sprint(local) != fmt.Sprint(c.local) || fmt.Sprint(remote) != fmt.Sprint(c.remote) || len(r.Failed) != c.failed {
						t.Fatalf("Resolve(%s) = local %q remote %q failed %v; want %q %q %d",
							c.addr, local, remote, r.Failed, c.local, c.remote, c.failed)
					}
				})
			}
		}
	})
}

// onlyDirectory hides every method of *SQL but Directory's.
type onlyDirectory struct{ Directory }

func TestResolveMailboxFields(t *testing.T) {
	forEachDialect(t, nil, func(t *testing.T, s *SQL) {
		resolveFixture(t, s)
		ctx := context.Background()
		must(t, s.SetQuota(ctx, "alice@example.org", 1<<20, 100))
		r, err := s.Resolve(ctx, "Jörg@bücher.example")
		if err != nil {
			t.Fatal(err)
		}
		want := []Mailbox{
			{Address: "Jörg@bücher.example", Maildir: "/srv/mail/joerg"},
			{Address: "alice@example.org", Maildir: "example.org/alice/Maildir", QuotaBytes: 1 << 20, QuotaMessages: 100},
		}
		if !slices.Equal(r.Local, want) {
			t.Fatalf("Local = %+v, want %+v", r.Local, want)
		}
		var ae *AddressError
		if _, err := s.Resolve(ctx, "a%b@example.org"); !errors.As(err, &ae) {
			t.Fatalf("percent hack: %v, want *AddressError", err)
		}
	})
}

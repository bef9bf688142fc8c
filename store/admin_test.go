package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestAdmin(t *testing.T) {
	forEachDialect(t, nil, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		must(t, s.AddDomain(ctx, "example.org"))
		must(t, s.AddDomain(ctx, "xn--bcher-kva.example"))
		if err := s.AddDomain(ctx, "EXAMPLE.org"); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate domain: %v", err)
		}
		var ae *AddressError
		if err := s.AddDomain(ctx, "bad domain"); !errors.As(err, &ae) {
			t.Fatalf("bad domain: %v", err)
		}
		ds, err := s.ListDomains(ctx)
		if err != nil || fmt.Sprint(ds) != "[bücher.example example.org]" {
			t.Fatalf("ListDomains = %v, %v", ds, err)
		}

		before := time.Now().Add(-time.Second)
		must(t, s.AddUser(ctx, &User{Address: "alice@example.org", PasswordHash: "h1", QuotaBytes: 10}))
		must(t, s.AddUser(ctx, &User{Address: "bob@bücher.example", PasswordHash: "h2"}))
		if err := s.AddUser(ctx, &User{Address: "ALICE@example.org", PasswordHash: "x"}); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate user: %v", err)
		}
		if err := s.AddUser(ctx, &User{Address: "x@remote.example", PasswordHash: "x"}); !errors.Is(err, ErrNotLocal) {
			t.Fatalf("user of foreign domain: %v", err)
		}
		for _, m := range []string{"../other/Maildir", "a/../../b", "/srv/../etc", "/srv/mail/"} {
			if err := s.AddUser(ctx, &User{Address: "m@example.org", PasswordHash: "x", Maildir: m}); err == nil {
				t.Fatalf("maildir %q accepted", m)
			}
		}
		must(t, s.AddUser(ctx, &User{Address: "m@example.org", PasswordHash: "x", Maildir: "custom/m"}))
		u, err := s.LookupUser(ctx, "alice@example.org")
		if err != nil {
			t.Fatal(err)
		}
		if u.Created.Before(before) || u.Updated.Before(before) || u.QuotaBytes != 10 {
			t.Fatalf("user = %+v", u)
		}
		must(t, s.SetPassword(ctx, "Alice@Example.org", "h3"))
		must(t, s.SetDisabled(ctx, "alice@example.org", true))
		must(t, s.SetDisabled(ctx, "alice@example.org", true)) // unchanged value is not "not found"
		must(t, s.SetQuota(ctx, "alice@example.org", 0, 5))
		u, err = s.LookupUser(ctx, "alice@example.org")
		if err != nil || u.PasswordHash != "h3" || !u.Disabled || u.QuotaBytes != 0 || u.QuotaMessages != 5 {
			t.Fatalf("after updates: %+v, %v", u, err)
		}
		for name, err := range map[string]error{
			"SetPassword": s.SetPassword(ctx, "nobody@example.org", "h"),
			"SetDisabled": s.SetDisabled(ctx, "nobody@example.org", false),
			"SetQuota":    s.SetQuota(ctx, "nobody@example.org", 1, 1),
			"RemoveUser":  s.RemoveUser(ctx, "nobody@example.org"),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s of unknown user: %v", name, err)
			}
		}
		if _, err := s.LookupUser(ctx, "not an address"); !errors.Is(err, ErrNotFound) || !errors.As(err, &ae) {
			t.Fatalf("LookupUser(garbage) = %v", err)
		}
		us, err := s.ListUsers(ctx, "bücher.example")
		if err != nil || len(us) != 1 || us[0].Address != "bob@bücher.example" {
			t.Fatalf("ListUsers(domain) = %v, %v", us, err)
		}
		us, err = s.ListUsers(ctx, "")
		if err != nil || len(us) != 3 || us[2].Maildir != "custom/m" {
			t.Fatalf("ListUsers() = %v, %v", us, err)
		}

		must(t, s.AddForwarding(ctx, "@example.org", []string{"bob@bücher.example"}))
		must(t, s.AddForwarding(ctx, "info@example.org", []string{" alice@example.org", "Friend@Remote.Example"}))
		if err := s.AddForwarding(ctx, "INFO@example.org", []string{"a@example.org"}); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate forwarding: %v", err)
		}
		if err := s.AddForwarding(ctx, "x@remote.example", []string{"a@example.org"}); !errors.Is(err, ErrNotLocal) {
			t.Fatalf("forwarding of foreign domain: %v", err)
		}
		if err := s.AddForwarding(ctx, "y@example.org", []string{"a%b@example.org"}); !errors.As(err, &ae) {
			t.Fatalf("bad destination: %v", err)
		}
		if err := s.AddForwarding(ctx, "y@example.org", nil); err == nil {
			t.Fatal("forwarding without destination accepted")
		}
		fw, err := s.ListForwardings(ctx)
		if err != nil || fmt.Sprint(fw) != "map[@example.org:[bob@bücher.example] info@example.org:[alice@example.org Friend@remote.example]]" {
			t.Fatalf("ListForwardings = %v, %v", fw, err)
		}
		if err := s.RemoveDomain(ctx, "example.org"); !errors.Is(err, ErrNotEmpty) {
			t.Fatalf("RemoveDomain with users: %v", err)
		}
		must(t, s.RemoveForwarding(ctx, "info@example.org"))
		must(t, s.RemoveForwarding(ctx, "@EXAMPLE.org"))
		if err := s.RemoveForwarding(ctx, "info@example.org"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("RemoveForwarding twice: %v", err)
		}
		must(t, s.RemoveUser(ctx, "alice@example.org"))
		must(t, s.RemoveUser(ctx, "m@example.org"))
		if _, err := s.LookupUser(ctx, "alice@example.org"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("removed user found: %v", err)
		}
		must(t, s.RemoveDomain(ctx, "example.org"))
		if ok, err := s.IsLocalDomain(ctx, "example.org"); ok || err != nil {
			t.Fatalf("removed domain local: %v, %v", ok, err)
		}
		if err := s.RemoveDomain(ctx, "example.org"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("RemoveDomain twice: %v", err)
		}

		must(t, s.SetTransport(ctx, "relay.example", "smtp:[192.0.2.1]:587"))
		must(t, s.SetTransport(ctx, "relay.example", "lmtp:unix:/run/lmtp"))
		must(t, s.SetTransport(ctx, "bücher.example", "lmtp:127.0.0.1:24"))
		if err := s.SetTransport(ctx, "x.example", "pigeon:coop"); !errors.Is(err, ErrBadTransport) {
			t.Fatalf("bad transport: %v", err)
		}
		ts, err := s.ListTransports(ctx)
		if err != nil || fmt.Sprint(ts) != "map[bücher.example:lmtp:127.0.0.1:24 relay.example:lmtp:unix:/run/lmtp]" {
			t.Fatalf("ListTransports = %v, %v", ts, err)
		}
		if tr, err := s.Transport(ctx, "xn--bcher-kva.example"); err != nil || tr != "lmtp:127.0.0.1:24" {
			t.Fatalf("Transport = %q, %v", tr, err)
		}
		must(t, s.RemoveTransport(ctx, "relay.example"))
		if _, err := s.Transport(ctx, "relay.example"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("removed transport: %v", err)
		}
	})
}

// TestCache checks that cached lookups see this process's writes at once
// and other writers' after the TTL.
func TestCache(t *testing.T) {
	for _, d := range dialects(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			driver, dsn, raw := d.open(t)
			// Without the watch of the change counter (its own test's):
			// this is the cache of one handle.
			s, err := Open(ctx, driver, dsn, migrating(&Options{CacheTTL: time.Hour, ChangePoll: -1}))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			s.cache.now = func() time.Time { return now }
			must(t, s.AddDomain(ctx, "example.org"))
			if _, err := s.LookupUser(ctx, "a@example.org"); !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			must(t, s.AddUser(ctx, &User{Address: "a@example.org", PasswordHash: "h"}))
			u, err := s.LookupUser(ctx, "a@example.org")
			if err != nil {
				t.Fatalf("negative entry not invalidated: %v", err)
			}
			u.PasswordHash = "changed by caller"
			must(t, s.SetDisabled(ctx, "a@example.org", true))
			u, err = s.LookupUser(ctx, "A@example.org")
			if err != nil || !u.Disabled || u.PasswordHash != "h" {
				t.Fatalf("after SetDisabled: %+v, %v", u, err)
			}
			// A write by someone else is seen only after the TTL.
			if _, err := raw.Exec("UPDATE users SET disabled = 0"); err != nil {
				t.Fatal(err)
			}
			if u, _ := s.LookupUser(ctx, "a@example.org"); !u.Disabled {
				t.Fatal("cache not used")
			}
			// ClearCache shows it at once.
			s.ClearCache()
			if u, _ := s.LookupUser(ctx, "a@example.org"); u.Disabled {
				t.Fatal("ClearCache kept the stale entry")
			}
			if _, err := raw.Exec("UPDATE users SET disabled = 1"); err != nil {
				t.Fatal(err)
			}
			now = now.Add(2 * time.Hour)
			if u, _ := s.LookupUser(ctx, "a@example.org"); !u.Disabled {
				t.Fatal("expired entry used")
			}
		})
	}
}

func TestParseTransport(t *testing.T) {
	ok := map[string]string{
		"lmtp:127.0.0.1:24":           "lmtp:127.0.0.1:24",
		"lmtp:127.0.0.1":              "lmtp:127.0.0.1:24",
		"lmtp:inet:mail.example:2424": "lmtp:mail.example:2424",
		"LMTP:[::1]:24":               "lmtp:[::1]:24",
		"lmtp:unix:/run/dovecot/lmtp": "lmtp:unix:/run/dovecot/lmtp",
		"smtp:[mx.example]:587":       "smtp:[mx.example]:587",
		"smtp:[IPv6:2001:db8::1]":     "smtp:[2001:db8::1]:25",
		"smtp:mx.Example":             "smtp:mx.example:25",
		"smtp:192.0.2.1:2525":         "smtp:[192.0.2.1]:2525",
		"smtp:Bücher.example":         "smtp:xn--bcher-kva.example:25",
		"relay:[relay.example]":       "smtp:[relay.example]:25",
		"smtp:":                       "smtp:",
		"error:mailbox moved":         "error:mailbox moved",
	}
	for in, want := range ok {
		tr, err := ParseTransport(in)
		if err != nil {
			t.Errorf("ParseTransport(%q): %v", in, err)
			continue
		}
		if tr.String() != want {
			t.Errorf("ParseTransport(%q) = %q, want %q", in, tr.String(), want)
		}
		back, err := ParseTransport(tr.String())
		if err != nil || *back != *tr {
			t.Errorf("round trip of %q: %+v, %v", in, back, err)
		}
	}
	if tr, _ := ParseTransport("smtp:mx.example"); !tr.MX {
		t.Error("smtp:host does not look up MX")
	}
	if tr, _ := ParseTransport("smtp:[mx.example]"); tr.MX {
		t.Error("smtp:[host] looks up MX")
	}
	for _, in := range []string{
		"", "lmtp", "pigeon:coop", "lmtp:", "lmtp:unix:", "lmtp:host:0", "lmtp:host:65536",
		"lmtp:host:x", "lmtp:host:", "smtp:[mx.example", "smtp:[mx]x", "smtp:[::1:25", "smtp:bad_host",
		"error:", "error:a\r\nb", "smtp:[IPv6:zz]:25",
	} {
		if _, err := ParseTransport(in); !errors.Is(err, ErrBadTransport) {
			t.Errorf("ParseTransport(%q) = %v, want ErrBadTransport", in, err)
		}
	}
}

// TestLookalikes checks that addresses and domains equal only under a
// database collation (MySQL's utf8mb4_general_ci equates "e" and "é")
// do not answer for each other.
func TestLookalikes(t *testing.T) {
	forEachDialect(t, nil, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		must(t, s.AddDomain(ctx, "bücher.example"))
		must(t, s.AddDomain(ctx, "example.org"))
		must(t, s.AddUser(ctx, &User{Address: "josé@example.org", PasswordHash: "h"}))
		must(t, s.AddForwarding(ctx, "rené@example.org", []string{"josé@example.org"}))
		must(t, s.SetTransport(ctx, "bücher.example", "lmtp:127.0.0.1:24"))
		if _, err := s.LookupUser(ctx, "jose@example.org"); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupUser(jose) = %v", err)
		}
		if _, err := s.Forwardings(ctx, "rene@example.org"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Forwardings(rene) = %v", err)
		}
		if ok, err := s.IsLocalDomain(ctx, "bucher.example"); ok || err != nil {
			t.Errorf("IsLocalDomain(bucher) = %v, %v", ok, err)
		}
		if _, err := s.Transport(ctx, "bucher.example"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Transport(bucher) = %v", err)
		}
		for _, a := range []string{"jose@example.org", "rene@example.org"} {
			if _, err := s.Resolve(ctx, a); !errors.Is(err, ErrNotFound) {
				t.Errorf("Resolve(%s) = %v", a, err)
			}
		}
		if _, err := s.Resolve(ctx, "x@bucher.example"); !errors.Is(err, ErrNotLocal) {
			t.Errorf("Resolve(x@bucher) = %v", err)
		}
		must(t, s.AddUser(ctx, &User{Address: "x@bücher.example", PasswordHash: "h"}))
		if us, err := s.ListUsers(ctx, "bucher.example"); err != nil || len(us) != 0 {
			t.Errorf("ListUsers(bucher) = %v, %v", us, err)
		}
		if u, err := s.LookupUser(ctx, "JOSÉ@example.org"); err != nil || u.Address != "josé@example.org" {
			t.Errorf("LookupUser(JOSÉ) = %+v, %v", u, err)
		}
	})
}

// FuzzParseTransport checks that parsing never panics and that every
// accepted spec has a canonical form that parses back to the same value.
func FuzzParseTransport(f *testing.F) {
	for _, s := range []string{
		"lmtp:127.0.0.1:24", "lmtp:unix:/run/lmtp", "smtp:[mx.example]:587", "smtp:",
		"smtp:[IPv6:2001:db8::1]", "relay:mx.example", "error:gone", "lmtp:inet:h:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := ParseTransport(s)
		if err != nil {
			if !errors.Is(err, ErrBadTransport) {
				t.Fatalf("error %v does not wrap ErrBadTransport", err)
			}
			return
		}
		back, err := ParseTransport(tr.String())
		if err != nil || *back != *tr {
			t.Fatalf("%q → %q → %+v, %v; want %+v", s, tr.String(), back, err, tr)
		}
		if tr.Network == "tcp" && tr.Host != "" && (tr.Port < 1 || tr.Port > 65535) {
			t.Fatalf("%q: port %d", s, tr.Port)
		}
	})
}

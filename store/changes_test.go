package store

import (
	"context"
	"testing"
	"time"
)

// TestChangesSeenAcrossHandles opens two directories on one database,
// as two nodes would, both caching for an hour: a write through one
// reaches the other's cache as soon as the change counter's poll (or,
// on PostgreSQL, the NOTIFY alone, the poll being an hour) tells it, and
// a third handle that does not watch keeps its stale entries, which is
// what the watch is for.
func TestChangesSeenAcrossHandles(t *testing.T) {
	for _, d := range dialects(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			driver, dsn, _ := d.open(t)
			open := func(opts Options) *SQL {
				opts.CacheTTL = time.Hour
				s, err := Open(ctx, driver, dsn, migrating(&opts))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			a := open(Options{ChangePoll: -1})
			must(t, a.AddDomain(ctx, "example.org"))
			must(t, a.AddUser(ctx, &User{Address: "alice@example.org", PasswordHash: "{X}old"}))

			changes := make(chan struct{}, 1)
			poll := 5 * time.Millisecond
			if driver == DriverPostgres {
				poll = time.Hour
			}
			b := open(Options{ChangePoll: poll, OnChange: func() {
				select {
				case changes <- struct{}{}:
				default:
				}
			}})
			if driver == DriverPostgres {
				<-b.listening
			}
			stale := open(Options{ChangePoll: -1})
			for _, s := range []*SQL{b, stale} {
				if u, err := s.LookupUser(ctx, "alice@example.org"); err != nil || u.PasswordHash != "{X}old" {
					t.Fatalf("LookupUser = %+v, %v", u, err)
				}
				if ok, err := s.IsLocalDomain(ctx, "example.net"); err != nil || ok {
					t.Fatalf("IsLocalDomain(example.net) = %v, %v", ok, err)
				}
			}

			must(t, a.SetPassword(ctx, "alice@example.org", "{X}new"))
			must(t, a.AddDomain(ctx, "example.net"))
			// The second write may be seen with the first or on its
			// own: wait until b sees both.
			deadline := time.After(20 * time.Second)
			for {
				select {
				case <-changes:
				case <-deadline:
					t.Fatal("no change seen within 20 s")
				}
				u, err := b.LookupUser(ctx, "alice@example.org")
				if err != nil {
					t.Fatal(err)
				}
				ok, err := b.IsLocalDomain(ctx, "example.net")
				if err != nil {
					t.Fatal(err)
				}
				if u.PasswordHash == "{X}new" && ok {
					break
				}
			}
			if u, err := stale.LookupUser(ctx, "alice@example.org"); err != nil || u.PasswordHash != "{X}old" {
				t.Fatalf("the unwatched handle's cache: %+v, %v; want the old entry", u, err)
			}
			if ok, _ := stale.IsLocalDomain(ctx, "example.net"); ok {
				t.Fatal("the unwatched handle's cache lost its entry")
			}
		})
	}
}

// TestChangesListenerReconnects: on PostgreSQL, with the poll set to an
// hour, the LISTEN connection is all that brings another handle's
// change. Its server process is terminated; a change made then is
// still seen, once the listener has reconnected and read the counter.
func TestChangesListenerReconnects(t *testing.T) {
	for _, d := range dialects(t) {
		if d.name != "postgres" {
			continue
		}
		ctx := context.Background()
		driver, dsn, raw := d.open(t)
		a, err := Open(ctx, driver, dsn, migrating(&Options{ChangePoll: -1}))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		must(t, a.AddDomain(ctx, "example.org"))
		must(t, a.AddUser(ctx, &User{Address: "alice@example.org", PasswordHash: "{X}old"}))
		changes := make(chan struct{}, 1)
		b, err := Open(ctx, driver, dsn, migrating(&Options{CacheTTL: time.Hour, ChangePoll: time.Hour, OnChange: func() {
			select {
			case changes <- struct{}{}:
			default:
			}
		}}))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		<-b.listening
		if u, err := b.LookupUser(ctx, "alice@example.org"); err != nil || u.PasswordHash != "{X}old" {
			t.Fatalf("LookupUser = %+v, %v", u, err)
		}
		var ok bool
		if err := raw.QueryRow("SELECT pg_terminate_backend(?::int)", int(b.listenPID.Load())).Scan(&ok); err != nil || !ok {
			t.Fatalf("terminate the listener: %v, %v", ok, err)
		}
		must(t, a.SetPassword(ctx, "alice@example.org", "{X}new"))
		select {
		case <-changes:
		case <-time.After(20 * time.Second):
			t.Fatal("no change seen within 20 s of the listener's end")
		}
		if u, err := b.LookupUser(ctx, "alice@example.org"); err != nil || u.PasswordHash != "{X}new" {
			t.Fatalf("after the reconnection: %+v, %v", u, err)
		}
	}
}

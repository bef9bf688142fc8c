package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/mailagent/mailagent/store"
)

// A directory in SQLite with the seed installation's tables: a domain, a
// user, an alias and a catch-all, and where mail for each address goes.
// MySQL/MariaDB and PostgreSQL take the same calls with another driver
// and DSN.
func Example() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "store-example")
	defer os.RemoveAll(tmp)
	dir, err := store.Open(ctx, store.DriverSQLite, filepath.Join(tmp, "directory.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer dir.Close()

	dir.AddDomain(ctx, "example.org")
	dir.AddUser(ctx, &store.User{Address: "alice@example.org", PasswordHash: "{PLAIN}x"})
	dir.AddForwarding(ctx, "postmaster@example.org", []string{"alice@example.org", "ops@elsewhere.net"})
	dir.AddForwarding(ctx, "@example.org", []string{"alice@example.org"})

	for _, rcpt := range []string{"Alice+lists@example.org", "postmaster@example.org", "nobody@example.org"} {
		r, err := store.Resolve(ctx, dir, rcpt, store.ResolveOptions{})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(rcpt, "->", r.Local[0].Address, r.Local[0].Maildir, r.Remote)
	}
	// Output:
	// Alice+lists@example.org -> alice@example.org example.org/alice/Maildir []
	// postmaster@example.org -> alice@example.org example.org/alice/Maildir [ops@elsewhere.net]
	// nobody@example.org -> alice@example.org example.org/alice/Maildir []
}

package local_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

// Local delivery in two phases: Body writes and fsyncs each user's copy
// out of sight, Commit makes them all visible in new/ at once.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "local-example")
	defer os.RemoveAll(dir)

	db, err := store.Open(ctx, store.DriverSQLite, filepath.Join(dir, "directory.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.AddDomain(ctx, "example.org")
	db.AddUser(ctx, &store.User{Address: "alice@example.org", PasswordHash: "x"})
	db.AddUser(ctx, &store.User{Address: "bob@example.org", PasswordHash: "x"})

	md, err := maildir.New(filepath.Join(dir, "mail"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer md.Close()
	ld := &local.Delivery{Maildirs: md, Directory: db}

	inbox := func(user string) int {
		ents, _ := os.ReadDir(filepath.Join(dir, "mail", "example.org", user, "Maildir", "new"))
		return len(ents)
	}
	d, _ := ld.Start(ctx, &mail.Envelope{ID: "1", From: "carol@far.example"})
	fmt.Println(d.AddRecipient(ctx, "alice@example.org"), d.AddRecipient(ctx, "bob@example.org"))
	fmt.Println(d.AddRecipient(ctx, "nobody@example.org"))
	if err := d.Body(ctx, mail.BytesBody([]byte("Subject: hi\r\n\r\nhello\r\n"))); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after Body:", inbox("alice"), inbox("bob"))
	if err := d.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after Commit:", inbox("alice"), inbox("bob"))
	// Output:
	// <nil> <nil>
	// SMTP error 550: User unknown
	// after Body: 0 0
	// after Commit: 1 1
}

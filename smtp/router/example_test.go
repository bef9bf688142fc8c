package router_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

// A Router over a SQLite directory and local Maildirs: an alias reaches
// its user's INBOX, an unknown user and a foreign domain are refused.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "router-example")
	defer os.RemoveAll(dir)

	db, err := store.Open(ctx, store.DriverSQLite, filepath.Join(dir, "directory.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.AddDomain(ctx, "example.org")
	db.AddUser(ctx, &store.User{Address: "alice@example.org", PasswordHash: "x"})
	db.AddForwarding(ctx, "info@example.org", []string{"alice@example.org"})

	md, err := maildir.New(filepath.Join(dir, "mail"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer md.Close()
	r, err := router.New(router.Options{
		Directory: db,
		Local:     &local.Delivery{Maildirs: md, Directory: db},
		// Queue: the outbound queue, for remote forwardings and
		// authenticated senders' mail; nil refuses remote recipients.
	})
	if err != nil {
		log.Fatal(err)
	}

	d, _ := r.Start(ctx, &mail.Envelope{ID: "1", From: "bob@far.example"})
	for _, rcpt := range []string{"info@example.org", "nobody@example.org", "carol@far.example"} {
		fmt.Println(rcpt, "->", d.AddRecipient(ctx, rcpt))
	}
	if err := d.Body(ctx, mail.BytesBody([]byte("Subject: hi\r\n\r\nhello\r\n"))); err != nil {
		log.Fatal(err)
	}
	if err := d.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	inbox, _ := os.ReadDir(filepath.Join(dir, "mail", "example.org/alice/Maildir/new"))
	fmt.Println("alice's INBOX:", len(inbox), "message(s)")
	// Output:
	// info@example.org -> <nil>
	// nobody@example.org -> SMTP error 550: User unknown
	// carol@far.example -> SMTP error 554: Relay access denied
	// alice's INBOX: 1 message(s)
}

package imap_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/imap"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// An IMAP server over the Maildirs an MDA writes and the users of a
// directory. In production give it a TLSConfig (STARTTLS on 143, or
// ImplicitTLS on 993) and leave AllowInsecureAuth off; the client here
// logs in over plain loopback.
func Example() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "imap-example")
	defer os.RemoveAll(tmp)
	dir, _ := store.Open(ctx, store.DriverSQLite, filepath.Join(tmp, "directory.db"), nil)
	defer dir.Close()
	dir.AddDomain(ctx, "example.org")
	hash, _ := auth.HashPassword("secret")
	dir.AddUser(ctx, &store.User{Address: "bob@example.org", PasswordHash: hash})
	boxes, _ := maildir.New(filepath.Join(tmp, "vmail"), nil)
	defer boxes.Close()
	path, _ := boxes.UserPath("example.org", "bob")
	boxes.Deliver(ctx, path, "INBOX", strings.NewReader("Subject: lunch?\r\n\r\nAt noon.\r\n"), nil)

	srv, err := imap.NewServer(imap.Options{Store: boxes, Authenticator: &auth.Authenticator{Users: dir}, AllowInsecureAuth: true})
	if err != nil {
		log.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)
	defer srv.Shutdown(ctx)

	c, _ := imapclient.DialInsecure(l.Addr().String(), nil)
	defer c.Close()
	fmt.Println("login:", c.Login("bob@example.org", "secret").Wait())
	sel, _ := c.Select("INBOX", nil).Wait()
	fmt.Println("messages:", sel.NumMessages)
	msgs, _ := c.Fetch(goimap.SeqSetNum(1), &goimap.FetchOptions{Envelope: true}).Collect()
	fmt.Println("subject:", msgs[0].Envelope.Subject)
	// Output:
	// login: <nil>
	// messages: 1
	// subject: lunch?
}

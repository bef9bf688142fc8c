package smtp_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	netmail "net/mail"
	netsmtp "net/smtp"
	"net/textproto"
	"os"
	"path/filepath"

	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

// An MX that delivers to local Maildirs: a directory, a maildir.Store, a
// router.Router with a local.Delivery, and a Server on a listener. Add a queue
// (package smtp/queue) as router.Options.Queue to forward off-site, and
// dnsauth checks as Options.Checks to check senders.
func Example() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "smtp-example")
	defer os.RemoveAll(tmp)
	dir, err := store.Open(ctx, store.DriverSQLite, filepath.Join(tmp, "directory.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer dir.Close()
	dir.AddDomain(ctx, "example.org")
	dir.AddUser(ctx, &store.User{Address: "bob@example.org", PasswordHash: "{PLAIN}x"})
	boxes, _ := maildir.New(filepath.Join(tmp, "vmail"), nil)
	defer boxes.Close()

	ld := &local.Delivery{Maildirs: boxes, Directory: dir}
	rt, err := router.New(router.Options{Directory: dir, Local: ld})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := smtp.NewServer(smtp.Options{Role: smtp.MX, Hostname: "mx.example.org", Target: rt})
	if err != nil {
		log.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)
	defer srv.Shutdown(ctx)

	// Any SMTP client now delivers; 250 means the copy is on disk.
	err = netsmtp.SendMail(l.Addr().String(), nil, "alice@example.net", []string{"bob@example.org"},
		[]byte("From: alice@example.net\r\nSubject: lunch?\r\n\r\nAt noon.\r\n"))
	fmt.Println("sent:", err)
	err = netsmtp.SendMail(l.Addr().String(), nil, "alice@example.net",
		[]string{"nobody@example.org"}, []byte("Subject: x\r\n\r\nx\r\n"))
	var reply *textproto.Error
	if errors.As(err, &reply) {
		fmt.Println("refused:", reply.Code, reply.Msg)
	}

	path, _ := boxes.UserPath("example.org", "bob")
	box, _ := boxes.Open(ctx, path)
	defer box.Close()
	inbox, _ := box.Folder(ctx, "INBOX")
	f, _, err := inbox.Open(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	m, _ := netmail.ReadMessage(f)
	fmt.Println(m.Header.Get("Return-Path"), m.Header.Get("Delivered-To"), m.Header.Get("Subject"))
	// Output:
	// sent: <nil>
	// refused: 550 5.1.1 User unknown
	// <alice@example.net> bob@example.org lunch?
}

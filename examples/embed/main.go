// Command embed is the smallest useful mailagent program: an MX that
// delivers into Maildirs and an IMAP server that reads them, on listeners
// of its own, with the directory in SQLite.
package main

import (
	"context"
	"log"
	"net"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/imap"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/smtp"
	"github.com/mailagent/mailagent/smtp/local"
	"github.com/mailagent/mailagent/smtp/router"
	"github.com/mailagent/mailagent/store"
)

func main() {
	ctx := context.Background()
	dir, err := store.Open(ctx, store.DriverSQLite, "mail.db", nil)
	check(err)
	mail, err := maildir.New("mail", nil)
	check(err)
	certFile, keyFile, err := auth.SelfSigned("tls", "mail.example.test")
	check(err)
	certs, err := auth.NewCertReloader(certFile, keyFile, auth.CertReloaderOptions{})
	check(err)
	// Mail programs get Mozilla's intermediate profile; the MX accepts
	// older peers too, which would otherwise send in cleartext.
	tlsConfig := auth.TLSIntermediate.Config(certs.GetCertificate)
	mxTLS := auth.TLSOld.Config(certs.GetCertificate)

	rt, err := router.New(router.Options{
		Directory: dir,
		Local:     &local.Delivery{Maildirs: mail, Directory: dir},
	})
	check(err)
	mx, err := smtp.NewServer(smtp.Options{Role: smtp.MX, Hostname: "mail.example.test", Target: rt, TLSConfig: mxTLS})
	check(err)
	imapSrv, err := imap.NewServer(imap.Options{Store: mail, Authenticator: &auth.Authenticator{Users: dir}, TLSConfig: tlsConfig})
	check(err)

	mxLn, err := net.Listen("tcp", "127.0.0.1:2525")
	check(err)
	imapLn, err := net.Listen("tcp", "127.0.0.1:2143")
	check(err)
	go func() { log.Fatal(mx.Serve(mxLn)) }()
	log.Fatal(imapSrv.Serve(imapLn))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

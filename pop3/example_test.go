package pop3_test

import (
	"context"
	"log"
	"log/slog"
	"net"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/pop3"
	"github.com/mailagent/mailagent/store"
)

// A POP3 server on port 110 (STLS) and 995 (implicit TLS), on the
// Maildirs and users of a Dovecot installation being replaced.
func Example() {
	ctx := context.Background()
	dir, err := store.Open(ctx, store.DriverSQLite, "/var/lib/mailagent/directory.db", nil)
	if err != nil {
		log.Fatal(err)
	}
	mail, err := maildir.New("/home/vmail", nil)
	if err != nil {
		log.Fatal(err)
	}
	certs, err := auth.NewCertReloader("/etc/ssl/mail.crt", "/etc/ssl/mail.key", auth.CertReloaderOptions{})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := pop3.NewServer(pop3.Options{
		Maildirs:      mail,
		Authenticator: &auth.Authenticator{Users: dir},
		TLSConfig:     auth.TLSConfig(certs.GetCertificate),
		Logger:        slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	// One Server serves both listeners; Shutdown ends both.
	pop3s, err := net.Listen("tcp", ":995")
	if err != nil {
		log.Fatal(err)
	}
	go func() { log.Println(srv.ServeTLS(pop3s)) }()
	log.Fatal(srv.ListenAndServe()) // ":110", STLS offered

}

package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/store"
)

// A directory migrated from the seed installation keeps its DES crypt
// hashes; the first login with the old password rewrites the hash.
func ExampleAuthenticator() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "auth-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	users, err := store.Open(ctx, store.DriverSQLite, filepath.Join(dir, "mailagent.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer users.Close()
	users.AddDomain(ctx, "example.org")
	// "abNANd1rDfiNc" is what MySQL's ENCRYPT('secret', 'ab') returns.
	users.AddUser(ctx, &store.User{Address: "demons@example.org", PasswordHash: "abNANd1rDfiNc"})

	a := &auth.Authenticator{Users: users}
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 50000}
	u, err := a.Authenticate(ctx, "demons@example.org", "secret", remote)
	if err != nil {
		log.Fatal(err)
	}
	scheme, _, _ := auth.ParseScheme(u.PasswordHash)
	fmt.Println(u.Address, scheme)
	// Output: demons@example.org ARGON2ID
}

// A go-smtp session offers the Authenticator's mechanisms and maps its
// errors to RFC 4954 replies. The same NewSASLServer call serves package
// imap's AUTHENTICATE.
type submissionSession struct {
	a      *auth.Authenticator
	remote net.Addr
	user   *store.User
}

func (s *submissionSession) AuthMechanisms() []string { return s.a.Mechanisms() }

func (s *submissionSession) Auth(mech string) (sasl.Server, error) {
	srv, err := s.a.NewSASLServer(context.TODO(), mech, s.remote, func(u *store.User) error {
		s.user = u
		return nil
	})
	if err != nil {
		return nil, err
	}
	return smtpReplies{srv}, nil
}

type smtpReplies struct{ sasl.Server }

func (r smtpReplies) Next(resp []byte) ([]byte, bool, error) {
	c, done, err := r.Server.Next(resp)
	switch {
	case errors.Is(err, auth.ErrThrottled):
		err = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many failed logins, try later"}
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrAuthzRefused):
		err = smtp.ErrAuthFailed // 535 5.7.8
	}
	return c, done, err
}

func Example_smtpSubmission() {
	s := &submissionSession{a: &auth.Authenticator{}}
	fmt.Println(s.AuthMechanisms())
	// Output: [PLAIN LOGIN]
}

package sieve_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mailagent/mailagent/maildir/sieve"
)

// A user's script decides where one delivered message goes; the caller
// (smtp.SieveFilter at local delivery, or a program of its own) carries out
// the actions: store into the folders named, forward, refuse, reply.
func Example() {
	script, err := sieve.Parse([]byte(`require ["fileinto", "imap4flags"];
if header :contains "List-Id" "golang-nuts" {
    fileinto :flags "\\Seen" "Lists/Go";
    stop;
}
if address :is "from" "boss@example.org" { addflag "\\Flagged"; }
`), sieve.Limits{})
	if err != nil {
		log.Fatal(err)
	}
	for _, raw := range []string{
		"From: someone@example.net\r\nList-Id: <golang-nuts.googlegroups.com>\r\nSubject: generics\r\n\r\n.\r\n",
		"From: Boss <boss@example.org>\r\nSubject: now\r\n\r\n.\r\n",
	} {
		res, err := sieve.Run(context.Background(), script, sieve.ParseMessage([]byte(raw)),
			sieve.Envelope{To: "alice@example.org"}, sieve.Options{})
		if err != nil {
			log.Fatal(err)
		}
		for _, a := range res.Actions {
			fmt.Println(a.Kind, a.Mailbox, a.Flags)
		}
	}
	// Output:
	// fileinto Lists/Go [\Seen]
	// keep INBOX [\Flagged]
}

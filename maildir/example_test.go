package maildir_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/mailagent/mailagent/maildir"
)

func Example() {
	ctx := context.Background()
	base, _ := os.MkdirTemp("", "maildir-example")
	defer os.RemoveAll(base)
	store, err := maildir.New(base, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// An MDA delivers; the message is durable when Deliver returns.
	path, _ := store.UserPath("example.org", "alice")
	msg := "Subject: hello\r\n\r\nHi Alice.\r\n"
	if _, err := store.Deliver(ctx, path, "INBOX", strings.NewReader(msg), nil); err != nil {
		log.Fatal(err)
	}

	// An IMAP or POP3 session reads it.
	md, err := store.Open(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	defer md.Close()
	inbox, _ := md.Folder(ctx, "INBOX")
	snap, _ := inbox.Snapshot(ctx)
	for _, m := range snap.Messages {
		fmt.Println(m.UID, m.Size, m.Flags)
	}
	inbox.StoreFlags(ctx, []uint32{1}, maildir.FlagsAdd, []string{maildir.FlagSeen, "$Important"})
	m, _ := inbox.Message(ctx, 1)
	fmt.Println(m.Flags)
	// Output:
	// 1 29 []
	// [\Seen $Important]
}

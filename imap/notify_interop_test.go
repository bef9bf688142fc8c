package imap

import (
	"path/filepath"
	"testing"

	"github.com/mailagent/mailagent/internal/interop/dovecottest"
)

// TestInteropNotifyDovecotMailboxes: a real Dovecot serving the same
// Maildir creates, subscribes, fills and deletes a folder; a session of
// this server with NOTIFY is told each change as it happens (LIST,
// LIST (\Subscribed), STATUS, LIST (\NonExistent)), without a new
// NOTIFY SET.
func TestInteropNotifyDovecotMailboxes(t *testing.T) {
	t.Parallel()
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	_, addr := st.serve(st.options())
	mail := filepath.Join(st.dir, "mail")
	d := dovecottest.Start(t, dovecottest.Options{
		Root:      filepath.Join(st.dir, "dovecot"),
		Protocols: []string{"imap"},
		Users:     map[string]string{"alice@local.example": testPassword},
		Home:      mail + "/%d/%n",
	})
	d.ChownTree(t, mail)

	c1 := dial(t, addr)
	c1.login("alice@local.example")
	c1.ok("NOTIFY SET (personal (MessageNew MessageExpunge MailboxName SubscriptionChange))")
	dc := dial(t, d.IMAP)
	dc.login("alice@local.example")
	dc.ok("CREATE DoveMade")
	c1.waitLine(`* LIST () "." "DoveMade"`)
	dc.ok("SUBSCRIBE DoveMade")
	c1.waitLine(`* LIST (\Subscribed) "." "DoveMade"`)
	dc.ok("APPEND DoveMade {%d+}\r\n%s", len(testMessage), testMessage)
	c1.waitLine(`* STATUS "DoveMade" (MESSAGES 1 UIDNEXT 2 `)
	dc.ok("DELETE DoveMade")
	c1.waitLine(`* LIST (\NonExistent) "." "DoveMade"`)
	c1.ok("NOOP")
}

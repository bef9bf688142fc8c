package imapwire

import "github.com/emersion/go-imap/v2"

// Notify is NOTIFY's arguments (RFC 5465): NONE, or SET with its
// event groups.
type Notify struct {
	None   bool
	Status bool // SET (STATUS): a STATUS now for each mailbox watched
	Groups []NotifyGroup
}

// NotifyGroup is one event group: which mailboxes, and which events
// (none for NONE).
type NotifyGroup struct {
	// Filter is SELECTED, SELECTED-DELAYED, INBOXES, PERSONAL,
	// SUBSCRIBED, SUBTREE or MAILBOXES.
	Filter    string
	Mailboxes []string // SUBTREE's and MAILBOXES' names
	Events    []NotifyEvent
}

// NotifyEvent is one event of a group, its name upper-cased
// (MESSAGENEW, MESSAGEEXPUNGE, FLAGCHANGE, ANNOTATIONCHANGE,
// MAILBOXNAME, SUBSCRIPTIONCHANGE, MAILBOXMETADATACHANGE,
// SERVERMETADATACHANGE or another name, which the server refuses).
type NotifyEvent struct {
	Name string
	// Fetch holds MessageNew's FETCH items, nil when none were given.
	Fetch *Fetch
}

// maxNotifyGroups bounds NOTIFY's event groups; each filter kind can
// usefully appear once, SUBTREE and MAILBOXES a few times.
const maxNotifyGroups = 64

// notify reads NOTIFY's arguments.
func (r *Reader) notify() *Notify {
	r.sp()
	n := &Notify{}
	switch r.upperAtom("SET or NONE") {
	case "NONE":
		n.None = true
		return n
	case "SET":
	default:
		r.syntax("Expected SET or NONE")
	}
	r.sp()
	// RFC 5465 section 8: "SET" [SP "STATUS"] SP event-groups. The
	// parenthesized "(STATUS)" is taken too.
	if r.peek() != '(' {
		if r.upperAtom("STATUS or an event group") != "STATUS" {
			r.syntax("Expected STATUS or an event group")
		}
		n.Status = true
		r.sp()
	} else if b, err := r.br.Peek(len("(STATUS)")); err == nil && asciiUpper(string(b)) == "(STATUS)" {
		r.take()
		r.upperAtom("STATUS")
		r.expect(')', "the end of (STATUS)")
		n.Status = true
		r.sp()
	}
	for {
		if len(n.Groups) == maxNotifyGroups {
			r.fail(imap.ResponseCodeLimit, "Too many NOTIFY event groups")
		}
		n.Groups = append(n.Groups, r.notifyGroup())
		if r.atEOL() {
			return n
		}
		r.sp()
	}
}

// notifyGroup reads "(" filter SP events ")".
func (r *Reader) notifyGroup() NotifyGroup {
	r.expect('(', "an event group")
	g := NotifyGroup{Filter: r.upperAtom("a mailbox filter")}
	switch g.Filter {
	case "SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED":
	case "SUBTREE", "MAILBOXES":
		r.sp()
		if r.peek() == '(' {
			r.list(func() { g.Mailboxes = append(g.Mailboxes, r.mailbox()) })
			if len(g.Mailboxes) == 0 {
				r.syntax("Expected a mailbox")
			}
		} else {
			g.Mailboxes = []string{r.mailbox()}
		}
	default:
		r.syntax("Unknown mailbox filter")
	}
	r.sp()
	if r.peek() != '(' {
		if r.upperAtom("NONE or events") != "NONE" {
			r.syntax("Expected NONE or a list of events")
		}
		r.expect(')', "the end of an event group")
		return g
	}
	r.list(func() {
		ev := NotifyEvent{Name: r.upperAtom("an event")}
		if ev.Name == "MESSAGENEW" && r.peek() == ' ' {
			if b, err := r.br.Peek(2); err == nil && b[1] == '(' {
				r.take()
				ev.Fetch = &Fetch{}
				r.list(func() { r.fetchAtt(ev.Fetch) })
			}
		}
		g.Events = append(g.Events, ev)
	})
	if len(g.Events) == 0 {
		r.syntax("Expected an event")
	}
	r.expect(')', "the end of an event group")
	return g
}

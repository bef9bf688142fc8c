package imap

import (
	"errors"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
)

// namespace maps mailbox names between the client's view and the
// Maildir's. With a prefix (Options.NamespacePrefix, "INBOX." for
// installations moved from a Dovecot with that namespace prefix) every
// folder but INBOX is known to clients as prefix+name, as Dovecot shows
// a namespace with inbox=yes; without one the names are the Maildir's.
type namespace struct{ prefix string }

// errOutsideNamespace answers a name that is neither INBOX nor under the
// prefix: no such mailbox can exist.
var errOutsideNamespace = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox"}

// in returns the Maildir's name for a name from the client, or
// errOutsideNamespace.
func (ns namespace) in(name string) (string, error) {
	if ns.prefix == "" || strings.EqualFold(name, "INBOX") {
		return name, nil
	}
	rest, ok := strings.CutPrefix(name, ns.prefix)
	if !ok || rest == "" || strings.EqualFold(strings.TrimSuffix(rest, string(delim)), "INBOX") {
		return "", errOutsideNamespace
	}
	return rest, nil
}

// out returns the name the client knows for the Maildir's name; the
// empty name (LIST's hierarchy root) and INBOX stay as they are.
func (ns namespace) out(name string) string {
	if ns.prefix == "" || name == "" || strings.EqualFold(name, "INBOX") {
		return name
	}
	return ns.prefix + name
}

// create is in for a name that is to be created: one outside the
// namespace cannot be, rather than not existing.
func (ns namespace) create(name string) (string, error) {
	n, err := ns.in(name)
	if err != nil {
		return "", &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Mailbox names start with " + ns.prefix}
	}
	return n, nil
}

// mapNames rewrites the mailbox names of cmd's arguments from the
// client's view to the Maildir's, before any handler sees them; LIST's
// patterns are matched against the client's names instead (see list),
// and CATENATE's URLs are mapped as they are read.
func (ns namespace) mapNames(cmd *imapwire.Command) error {
	if ns.prefix == "" {
		return nil
	}
	var err error
	switch a := cmd.Args.(type) {
	case *imapwire.Select:
		a.Mailbox, err = ns.in(a.Mailbox)
	case *imapwire.Mailbox:
		a.Name, err = ns.in(a.Name)
	case *imapwire.Create:
		a.Mailbox, err = ns.create(a.Mailbox)
	case *imapwire.Rename:
		if a.From, err = ns.in(a.From); err == nil {
			a.To, err = ns.create(a.To)
		}
	case *imapwire.Status:
		a.Mailbox, err = ns.in(a.Mailbox)
	case *imapwire.Append:
		a.Mailbox, err = ns.in(a.Mailbox)
	case *imapwire.Copy:
		a.Mailbox, err = ns.in(a.Mailbox)
	case *imapwire.Notify:
		for i := range a.Groups {
			for j, n := range a.Groups[i].Mailboxes {
				if a.Groups[i].Mailboxes[j], err = ns.in(n); err != nil {
					return err
				}
			}
		}
	}
	return err
}

// CheckNamespacePrefix refuses a prefix for Options.NamespacePrefix that is not one or more names
// each followed by the delimiter (as "INBOX."), which clients could not
// tell from a folder name.
func CheckNamespacePrefix(p string) error {
	if p == "" {
		return nil
	}
	if !strings.HasSuffix(p, string(delim)) || strings.HasPrefix(p, string(delim)) || strings.Contains(p, string(delim)+string(delim)) ||
		strings.ContainsAny(p, "*%\"\\\r\n") {
		return errors.New(`imap: Options.NamespacePrefix must be names each ending with ".", as "INBOX."`)
	}
	return nil
}

// namespace is the namespace of a server's sessions.
func (s *Server) namespace() namespace { return namespace{prefix: s.opts.NamespacePrefix} }

package mailtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// WaitTimeout bounds WaitMessage.
const WaitTimeout = 10 * time.Second

// AddDomain makes domain local to the server.
func (s *Server) AddDomain(domain string) {
	s.t.Helper()
	if err := s.Store.AddDomain(s.ctx, domain); err != nil {
		s.t.Fatalf("mailtest: add domain %s: %v", domain, err)
	}
}

// AddUser creates a mailbox with a password.
func (s *Server) AddUser(address, password string) {
	s.t.Helper()
	hash, err := testArgon2.Hash(password)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.Store.AddUser(s.ctx, &store.User{Address: address, PasswordHash: hash}); err != nil {
		s.t.Fatalf("mailtest: add user %s: %v", address, err)
	}
}

// AddAlias forwards source (an address, or "@domain" for a catch-all) to
// destinations, local or remote.
func (s *Server) AddAlias(source string, destinations ...string) {
	s.t.Helper()
	if err := s.Store.AddForwarding(s.ctx, source, destinations); err != nil {
		s.t.Fatalf("mailtest: add alias %s: %v", source, err)
	}
}

// SetQuota limits a mailbox (0 = no limit).
func (s *Server) SetQuota(address string, bytes, messages int64) {
	s.t.Helper()
	if err := s.Store.SetQuota(s.ctx, address, bytes, messages); err != nil {
		s.t.Fatalf("mailtest: set quota %s: %v", address, err)
	}
}

// Submit sends msg through the submission server as a mail client does:
// STARTTLS, AUTH PLAIN as user, then the transaction. It returns the
// server's refusal, if any, as a *smtp.Error.
func (s *Server) Submit(user, password, from string, to []string, msg string) error {
	c, err := gosmtp.DialStartTLS(s.SubmissionAddr, s.ClientTLS)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Auth(sasl.NewPlainClient("", user, password)); err != nil {
		return err
	}
	if err := c.SendMail(from, to, strings.NewReader(crlf(msg))); err != nil {
		return err
	}
	return c.Quit()
}

// SendMX delivers msg to the server's MX as a foreign server at 127.0.0.1
// would (no AUTH, opportunistic STARTTLS).
func (s *Server) SendMX(from string, to []string, msg string) error {
	conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}).Dial("tcp", s.MXAddr)
	if err != nil {
		return err
	}
	c := gosmtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("sender.test"); err != nil {
		return err
	}
	if err := c.SendMail(from, to, strings.NewReader(crlf(msg))); err != nil {
		return err
	}
	return c.Quit()
}

// crlf gives a message written with "\n" line ends the CRLF ends SMTP needs.
func crlf(msg string) string {
	return strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n")
}

// Message is a message read from a Maildir.
type Message struct {
	UID   uint32
	Flags []string
	// Raw is the message exactly as stored.
	Raw []byte
	// Header is its parsed header.
	Header mail.Header
	// Body is the text of its first part (the whole body for a
	// single-part message), decoded.
	Body string
}

// maildir opens address's Maildir.
func (s *Server) maildir(address string) (*maildir.Maildir, error) {
	u, err := s.Store.LookupUser(s.ctx, address)
	if err != nil {
		return nil, err
	}
	return s.Maildirs.Open(s.ctx, u.Maildir)
}

// Messages returns the messages in a folder of address's mailbox, in UID
// order. A folder that does not exist yet is empty.
func (s *Server) Messages(address, folder string) []*Message {
	s.t.Helper()
	msgs, err := s.messages(address, folder)
	if err != nil {
		s.t.Fatalf("mailtest: messages of %s/%s: %v", address, folder, err)
	}
	return msgs
}

func (s *Server) messages(address, folder string) ([]*Message, error) {
	md, err := s.maildir(address)
	if err != nil {
		return nil, err
	}
	defer md.Close()
	f, err := md.Folder(s.ctx, folder)
	if err != nil {
		if isNoFolder(err) {
			return nil, nil
		}
		return nil, err
	}
	snap, err := f.Snapshot(s.ctx)
	if err != nil {
		return nil, err
	}
	var out []*Message
	for _, m := range snap.Messages {
		msg, err := readMessage(s.ctx, f, m)
		if err != nil {
			return nil, err
		}
		out = append(out, msg)
	}
	return out, nil
}

func readMessage(ctx context.Context, f *maildir.Folder, m maildir.Message) (*Message, error) {
	file, _, err := f.Open(ctx, m.UID)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	raw, err := io.ReadAll(file)
	if err != nil {
		return nil, err
	}
	out := &Message{UID: m.UID, Flags: m.Flags, Raw: raw}
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil && r == nil {
		return nil, fmt.Errorf("uid %d: %w", m.UID, err)
	}
	out.Header = r.Header
	if p, err := r.NextPart(); err == nil {
		b, _ := io.ReadAll(p.Body)
		out.Body = string(b)
	}
	return out, nil
}

// WaitMessage waits until a folder of address's mailbox holds a message
// and returns the first one; it fails the test after WaitTimeout. It
// waits on the Maildir's change notification, not on a timer.
func (s *Server) WaitMessage(address, folder string) *Message {
	s.t.Helper()
	msgs := s.WaitMessages(address, folder, 1)
	return msgs[0]
}

// WaitMessages waits until the folder holds at least n messages and
// returns them all.
func (s *Server) WaitMessages(address, folder string, n int) []*Message {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, WaitTimeout)
	defer cancel()
	md, err := s.maildir(address)
	if err != nil {
		s.t.Fatalf("mailtest: %s: %v", address, err)
	}
	defer md.Close()
	for {
		f, err := md.Folder(ctx, folder)
		if err != nil && !isNoFolder(err) {
			s.t.Fatalf("mailtest: %s/%s: %v", address, folder, err)
		}
		var events <-chan maildir.Event
		if f != nil {
			// Subscribe before looking, so nothing arrives unseen
			// between the look and the wait.
			if events, err = f.Watch(ctx); err != nil {
				s.t.Fatalf("mailtest: watch %s/%s: %v", address, folder, err)
			}
			msgs, err := s.messages(address, folder)
			if err != nil {
				s.t.Fatalf("mailtest: %s/%s: %v", address, folder, err)
			}
			if len(msgs) >= n {
				return msgs
			}
		} else {
			// The folder does not exist yet: wait for the next change to
			// the mailbox's INBOX-level directory list.
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
			}
		}
		select {
		case <-events:
		case <-ctx.Done():
			s.t.Fatalf("mailtest: no %d message(s) in %s/%s within %v", n, address, folder, WaitTimeout)
		}
	}
}

func isNoFolder(err error) bool { return errors.Is(err, maildir.ErrNoFolder) }

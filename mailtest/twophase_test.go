package mailtest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailagent/mailagent/smtp/queue"
)

// The tests of this file send one message to three local users, the
// second of whom fails, over the MX, submission and LMTP, and check the
// replies, what each Maildir holds, and the notification.

var threeUsers = []string{"u1@a.test", "u2@a.test", "u3@a.test"}

// threeUsersFixture is a.test with u1, u2, u3 and alice, and b.test with
// bob, a remote sender.
func threeUsersFixture(t *testing.T) (a, b *Server) {
	t.Helper()
	a, b = twoDomains(t)
	for _, u := range threeUsers {
		a.AddUser(u, "pw")
	}
	return a, b
}

// reply is the code and enhanced code of err, "250" for nil.
func reply(err error) string {
	if err == nil {
		return "250"
	}
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) {
		return err.Error()
	}
	return strings.TrimSpace(strings.Join([]string{strconv.Itoa(se.Code), enh(se.EnhancedCode)}, " "))
}

func enh(c gosmtp.EnhancedCode) string {
	if c == (gosmtp.EnhancedCode{}) || c == gosmtp.NoEnhancedCode {
		return ""
	}
	return strconv.Itoa(c[0]) + "." + strconv.Itoa(c[1]) + "." + strconv.Itoa(c[2])
}

// role is how a test reaches the server.
type role struct {
	name string
	from string
	dial func(t *testing.T, a *Server) *gosmtp.Client
	lmtp bool
}

var roles = []role{
	{name: "mx", from: "bob@b.test", dial: func(t *testing.T, a *Server) *gosmtp.Client {
		conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}).Dial("tcp", a.MXAddr)
		if err != nil {
			t.Fatal(err)
		}
		c := gosmtp.NewClient(conn)
		if err := c.Hello("sender.test"); err != nil {
			t.Fatal(err)
		}
		return c
	}},
	{name: "submission", from: "alice@a.test", dial: func(t *testing.T, a *Server) *gosmtp.Client {
		c, err := gosmtp.DialStartTLS(a.SubmissionAddr, a.ClientTLS)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Hello("client.test"); err != nil {
			t.Fatal(err)
		}
		if err := c.Auth(sasl.NewPlainClient("", "alice@a.test", "pw")); err != nil {
			t.Fatal(err)
		}
		return c
	}},
	{name: "lmtp", from: "bob@b.test", lmtp: true, dial: func(t *testing.T, a *Server) *gosmtp.Client {
		conn, err := net.Dial("tcp", a.LMTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		c := gosmtp.NewClientLMTP(conn)
		if err := c.Hello("mta.test"); err != nil {
			t.Fatal(err)
		}
		return c
	}},
}

// result is what a transaction got: one reply per RCPT, then the reply to
// the message (LMTP: one per accepted recipient, in order).
type result struct {
	rcpt []string
	data []string
}

// send runs one transaction from r.from to the three users.
func (r role) send(t *testing.T, a *Server, msg string) result {
	t.Helper()
	c := r.dial(t, a)
	defer c.Close()
	if err := c.Mail(r.from, nil); err != nil {
		t.Fatal(err)
	}
	var res result
	var accepted []string
	for _, u := range threeUsers {
		err := c.Rcpt(u, nil)
		res.rcpt = append(res.rcpt, reply(err))
		if err == nil {
			accepted = append(accepted, u)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(crlf(msg))); err != nil {
		t.Fatal(err)
	}
	if !r.lmtp {
		_, err := w.CloseWithResponse()
		res.data = []string{reply(err)}
		return res
	}
	_, err = w.CloseWithLMTPResponse()
	var lerr gosmtp.LMTPDataError
	if err != nil && !errors.As(err, &lerr) {
		t.Fatal(err)
	}
	for _, u := range accepted {
		var e error
		if se, ok := lerr[u]; ok {
			e = se
		}
		res.data = append(res.data, reply(e))
	}
	return res
}

// expect sends msg and checks the replies: smtpWant over SMTP, lmtpWant
// over LMTP, in the form of result.String.
func (r role) expect(t *testing.T, a *Server, msg, smtpWant, lmtpWant string) {
	t.Helper()
	want := smtpWant
	if r.lmtp {
		want = lmtpWant
	}
	if res := r.send(t, a, msg); res.String() != want {
		t.Fatalf("%s, want %s", res, want)
	}
}

func (res result) String() string {
	return "RCPT " + strings.Join(res.rcpt, ",") + "; DATA " + strings.Join(res.data, ",")
}

// subjects lists the Subject of every message in address's INBOX.
func subjects(t *testing.T, s *Server, address string) []string {
	t.Helper()
	var out []string
	for _, m := range s.Messages(address, "INBOX") {
		out = append(out, m.Header.Get("Subject"))
	}
	return out
}

func wantSubjects(t *testing.T, s *Server, address string, want ...string) {
	t.Helper()
	got := subjects(t, s, address)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("%s INBOX: %q, want %q", address, got, want)
	}
}

// bigMessage is about n bytes, from alice, the submitting user (whose
// From submission checks).
func bigMessage(subject string, n int) string {
	return "From: alice@a.test\nSubject: " + subject + "\n\n" + strings.Repeat(strings.Repeat("z", 70)+"\n", n/71+1)
}

// notification returns the DSN that reached address, failing unless it
// names the recipient and reply.
func wantNotification(t *testing.T, s *Server, address, rcpt, status string) {
	t.Helper()
	dsn := s.WaitMessage(address, "INBOX")
	raw := string(dsn.Raw)
	if !strings.Contains(dsn.Header.Get("Content-Type"), "multipart/report") ||
		!strings.Contains(raw, "Final-Recipient: rfc822; "+rcpt) || !strings.Contains(raw, "Status: "+status) {
		t.Fatalf("notification to %s:\n%s", address, raw)
	}
	for _, other := range threeUsers {
		if other != rcpt && strings.Contains(raw, "Final-Recipient: rfc822; "+other) {
			t.Fatalf("notification names %s, which was delivered:\n%s", other, raw)
		}
	}
}

// TestOverQuotaAtRCPT: the second user's mailbox is full before the
// message: RCPT says 552 5.2.2 for it, the others get the message.
func TestOverQuotaAtRCPT(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			a, _ := threeUsersFixture(t)
			a.SetQuota("u2@a.test", 0, 1)
			if err := a.SendMX("x@elsewhere.test", []string{"u2@a.test"}, "Subject: filler\n\nfull now\n"); err != nil {
				t.Fatal(err)
			}
			r.expect(t, a, "Subject: three\n\nhello\n", "RCPT 250,552 5.2.2,250; DATA 250", "RCPT 250,552 5.2.2,250; DATA 250,250")
			wantSubjects(t, a, "u1@a.test", "three")
			wantSubjects(t, a, "u2@a.test", "filler")
			wantSubjects(t, a, "u3@a.test", "three")
		})
	}
}

// TestOverQuotaAtDATA: the second user has room at RCPT but not for this
// message. Over SMTP the message gets 250 and the sender a notification
// for u2 alone (through the queue: it waits there while b.test is
// unreachable); over LMTP u2 gets its own 552.
func TestOverQuotaAtDATA(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			a, b := threeUsersFixture(t)
			a.SetQuota("u2@a.test", 500, 0)
			b.StopMX()
			r.expect(t, a, bigMessage("three", 2000), "RCPT 250,250,250; DATA 250", "RCPT 250,250,250; DATA 250,552 5.2.2,250")
			wantSubjects(t, a, "u1@a.test", "three")
			wantSubjects(t, a, "u2@a.test")
			wantSubjects(t, a, "u3@a.test", "three")
			switch r.name {
			case "mx":
				// The notification to bob@b.test is in a's queue.
				var dsns []*queue.Info
				err := a.Queue.List(context.Background(), func(in *queue.Info) error {
					if in.From == "" {
						dsns = append(dsns, in)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(dsns) != 1 || len(dsns[0].Recipients) != 1 || dsns[0].Recipients[0].Address != "bob@b.test" {
					t.Fatalf("notifications in the queue: %+v", dsns)
				}
				b.StartMX()
				a.Queue.Wake()
				wantNotification(t, b, "bob@b.test", "u2@a.test", "5.2.2")
			case "submission":
				wantNotification(t, a, "alice@a.test", "u2@a.test", "5.2.2")
			case "lmtp":
				if n := a.Queue.Len(); n != 0 {
					t.Fatalf("%d messages queued for an LMTP delivery", n)
				}
			}
		})
	}
}

// TestWriteErrorAtDATA: writing the second user's copy fails (its new/ is
// not a directory). Over SMTP the whole message is refused with 451
// 4.3.0 and nobody has it, so that the client's retry, once the fault is
// gone, leaves exactly one copy in each mailbox; over LMTP u2 alone gets
// 451 and u1 and u3 keep theirs.
func TestWriteErrorAtDATA(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			a, _ := threeUsersFixture(t)
			m, err := a.maildir("u2@a.test")
			if err != nil {
				t.Fatal(err)
			}
			newDir := filepath.Join(m.Path(), "new")
			m.Close()
			if err := os.Remove(newDir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(newDir, []byte("not a directory"), 0o600); err != nil {
				t.Fatal(err)
			}
			r.expect(t, a, "Subject: three\n\nhello\n", "RCPT 250,250,250; DATA 451 4.3.0", "RCPT 250,250,250; DATA 250,451 4.3.0,250")
			if r.lmtp {
				wantSubjects(t, a, "u1@a.test", "three")
				wantSubjects(t, a, "u3@a.test", "three")
			} else {
				wantSubjects(t, a, "u1@a.test")
				wantSubjects(t, a, "u3@a.test")
			}
			// The fault is repaired and the client retries.
			if err := os.Remove(newDir); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(newDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if r.lmtp {
				// The LMTP client retries u2 alone.
				c := r.dial(t, a)
				defer c.Close()
				if err := c.SendMail(r.from, []string{"u2@a.test"}, strings.NewReader(crlf("Subject: three\n\nhello\n"))); err != nil {
					t.Fatal(err)
				}
			} else if res := r.send(t, a, "Subject: three\n\nhello\n"); res.String() != "RCPT 250,250,250; DATA 250" {
				t.Fatalf("retry: %s", res)
			}
			for _, u := range threeUsers {
				wantSubjects(t, a, u, "three")
			}
			if r.name == "submission" {
				wantSubjects(t, a, "alice@a.test")
			}
		})
	}
}

package pop3

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/auth"
	"github.com/mailagent/mailagent/maildir"
	"github.com/mailagent/mailagent/store"
)

// sizedMessage returns a message with LF line endings whose size with
// CRLF line endings is exactly crlfSize (at least 60).
func sizedMessage(subject string, crlfSize int) string {
	head := "From: a@example.net\nSubject: " + subject + "\n\n"
	lines := strings.Count(head, "\n")
	var b strings.Builder
	b.WriteString(head)
	n := len(head) + lines
	for n < crlfSize {
		k := min(crlfSize-n-2, 70) // a line of k bytes costs k+2 octets
		if left := crlfSize - n - (k + 2); left > 0 && left < 3 {
			k -= 3 - left // leave room for a last line of at least one byte
		}
		b.WriteString(strings.Repeat("x", max(k, 0)) + "\n")
		n += max(k, 0) + 2
	}
	return b.String()
}

// crlf converts LF line endings to CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// TestRFC1939Example replays the example session of RFC 1939 section 10,
// with USER/PASS in place of APOP, on two messages of 120 and 200 octets.
func TestRFC1939Example(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("mrose@example.org", "tanstaaf")
	m1, m2 := sizedMessage("one", 120), sizedMessage("two", 200)
	e.deliverSeq(u, m1, m2)

	c := e.dial()
	c.cmd("USER mrose@example.org", "+OK")
	c.cmd("PASS tanstaaf", "+OK Logged in, maildrop has 2 messages (320 octets).")
	c.cmd("STAT", "+OK 2 320")
	c.cmd("LIST", "+OK 2 messages (320 octets)")
	if got := c.multi(); !slices.Equal(got, []string{"1 120", "2 200"}) {
		t.Fatalf("LIST: %q", got)
	}
	c.cmd("RETR 1", "+OK 120 octets")
	if got := strings.Join(c.multi(), "\r\n") + "\r\n"; got != crlf(m1) || len(got) != 120 {
		t.Fatalf("RETR 1 sent %d octets %q, want %q", len(got), got, crlf(m1))
	}
	c.cmd("DELE 1", "+OK Message 1 deleted.")
	c.cmd("RETR 2", "+OK 200 octets")
	if got := strings.Join(c.multi(), "\r\n") + "\r\n"; got != crlf(m2) {
		t.Fatalf("RETR 2 sent %q", got)
	}
	c.cmd("DELE 2", "+OK Message 2 deleted.")
	c.cmd("QUIT", "+OK Logging out, 0 messages left.")
	c.eof()
	if f := e.files(u); len(f) != 0 {
		t.Fatalf("after QUIT the maildrop holds %q", f)
	}
}

// TestRFC1939CommandExamples replays the examples given with each
// command in RFC 1939 sections 5 to 7.
func TestRFC1939CommandExamples(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("mrose@example.org", "secret")
	m1 := sizedMessage("one", 120)
	e.deliverSeq(u, m1, sizedMessage("two", 200))
	c := e.login("mrose@example.org", "secret")

	c.cmd("STAT", "+OK 2 320")
	c.cmd("LIST 2", "+OK 2 200")
	c.cmd("LIST 3", "-ERR No such message.")
	c.cmd("NOOP", "+OK")
	c.cmd("DELE 1", "+OK Message 1 deleted.")
	c.cmd("DELE 1", "-ERR Message 1 is deleted.")
	c.cmd("LIST 1", "-ERR Message 1 is deleted.")
	c.cmd("RETR 1", "-ERR Message 1 is deleted.")
	c.cmd("STAT", "+OK 1 200")
	c.cmd("LIST", "+OK 1 messages (200 octets)")
	if got := c.multi(); !slices.Equal(got, []string{"2 200"}) {
		t.Fatalf("LIST after DELE: %q", got)
	}
	c.cmd("RSET", "+OK Maildrop has 2 messages (320 octets).")
	c.cmd("TOP 1 1", "+OK")
	wantTop := strings.SplitAfterN(crlf(m1), "\r\n", 5)
	if got := strings.Join(c.multi(), "\r\n") + "\r\n"; got != strings.Join(wantTop[:4], "") {
		t.Fatalf("TOP 1 1 sent %q, want %q", got, strings.Join(wantTop[:4], ""))
	}
	c.cmd("TOP 100 3", "-ERR No such message.")

	snap := e.snapshot(u)
	uidls := []string{
		fmt.Sprintf("%08x%08x", snap.Messages[0].UID, snap.UIDValidity),
		fmt.Sprintf("%08x%08x", snap.Messages[1].UID, snap.UIDValidity),
	}
	c.cmd("UIDL", "+OK")
	if got := c.multi(); !slices.Equal(got, []string{"1 " + uidls[0], "2 " + uidls[1]}) {
		t.Fatalf("UIDL: %q, want %q", got, uidls)
	}
	c.cmd("UIDL 2", "+OK 2 "+uidls[1])
	c.cmd("UIDL 3", "-ERR No such message.")
	c.cmd("QUIT", "+OK Logging out, 2 messages left.")
	c.eof()
	if f := e.files(u); len(f) != 2 {
		t.Fatalf("after QUIT without DELE the maildrop holds %q", f)
	}
}

// snapshot reads u's INBOX as the maildir package sees it.
func (e *testEnv) snapshot(u *store.User) *maildir.Snapshot {
	e.t.Helper()
	ctx := context.Background()
	md, err := e.ms.Open(ctx, u.Maildir)
	if err != nil {
		e.t.Fatal(err)
	}
	defer md.Close()
	f, err := md.Folder(ctx, "INBOX")
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := f.Snapshot(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// TestAuthorizationState sends every command before login: the
// transaction commands and unknown ones are refused without ending the
// session, and the login commands work.
func TestAuthorizationState(t *testing.T) {
	e := newEnv(t)
	e.addUser("u@example.org", "pw")
	c := e.dial()
	for _, cmd := range []string{"STAT", "LIST", "LIST 1", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL", "UIDL 1"} {
		c.cmd(cmd, "-ERR Not logged in.")
	}
	c.cmd("XYZZY", "-ERR Unknown command.")
	c.cmd("", "-ERR empty command.")
	c.cmd("ST4T", "-ERR command keyword is not a word of letters.")
	c.cmd("NOOP\x00", "-ERR control character in command.")
	c.cmd("APOP u@example.org c4c9334bac560ecc979e58001b3e22fb", "-ERR APOP is not supported.")
	c.cmd("PASS pw", "-ERR No user name given (USER first).")
	c.cmd("USER", "-ERR USER takes one argument, the user name.")
	c.cmd("USER u@example.org", "+OK")
	c.cmd("PASS", "-ERR PASS takes one argument, the password.")
	c.cmd("STLS", "+OK Begin TLS negotiation now.") // then a client would handshake; this one quits
	c.nc.Close()

	c = e.dial()
	c.cmd("user u@example.org", "+OK") // keywords are case-insensitive
	c.cmdPrefix("pass pw", "+OK Logged in")
	c.cmd("QUIT", "+OK Logging out, 0 messages left.")
	c.eof()

	c = e.dial()
	c.cmd("QUIT", "+OK Logging out.")
	c.eof()
}

// TestTransactionState sends every command after login, with bad
// arguments too.
func TestTransactionState(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("u@example.org", "pw")
	e.deliver(u, sizedMessage("a", 100))
	e.deliver(u, sizedMessage("b", 100))
	c := e.login("u@example.org", "pw")
	for _, cmd := range []string{"USER u@example.org", "PASS pw", "AUTH PLAIN", "APOP u x", "STLS"} {
		c.cmd(cmd, "-ERR Already logged in.")
	}
	c.cmd("FOO", "-ERR Unknown command.")
	c.cmd("STAT 1", "-ERR STAT takes no argument.")
	c.cmd("NOOP x", "-ERR NOOP takes no argument.")
	c.cmd("RSET x", "-ERR RSET takes no argument.")
	c.cmd("LIST 1 2", "-ERR LIST takes at most one argument.")
	c.cmd("UIDL 1 2", "-ERR UIDL takes at most one argument.")
	c.cmd("RETR", "-ERR RETR takes one argument, a message number.")
	c.cmd("DELE", "-ERR DELE takes one argument, a message number.")
	c.cmd("TOP 1", "-ERR TOP takes two arguments, a message number and a line count.")
	c.cmd("TOP 1 -1", "-ERR Invalid line count.")
	for _, arg := range []string{"0", "3", "999999999"} {
		c.cmd("RETR "+arg, "-ERR No such message.")
		c.cmd("DELE "+arg, "-ERR No such message.")
		c.cmd("LIST "+arg, "-ERR No such message.")
	}
	for _, arg := range []string{"-1", "+1", "1x", "x", "0x1", "1234567890"} {
		c.cmd("RETR "+arg, "-ERR Invalid message number.")
	}
	c.cmd("DELE 2", "+OK Message 2 deleted.")
	c.cmd("TOP 2 0", "-ERR Message 2 is deleted.")
	c.cmd("UIDL 2", "-ERR Message 2 is deleted.")
	c.cmd("UIDL", "+OK")
	if got := c.multi(); len(got) != 1 || !strings.HasPrefix(got[0], "1 ") {
		t.Fatalf("UIDL lists deleted messages: %q", got)
	}
	c.cmd("STAT", "+OK 1 100")
	c.cmd("QUIT", "+OK Logging out, 1 messages left.")
	c.eof()
	if f := e.files(u); len(f) != 1 {
		t.Fatalf("maildrop holds %q, want one message", f)
	}
}

// TestCapabilities checks CAPA in each state, on plain and TLS
// connections, with and without AllowInsecureAuth, EXPIRE and
// LOGIN-DELAY.
func TestCapabilities(t *testing.T) {
	base := []string{"CAPA", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	t.Run("insecure", func(t *testing.T) {
		e := newEnv(t, func(o *Options, _ *auth.Authenticator) { o.AllowInsecureAuth = false })
		c := e.dial()
		c.cmd("CAPA", "+OK Capability list follows.")
		want := append(slices.Clone(base), "STLS", "IMPLEMENTATION mailagent")
		if got := c.multi(); !slices.Equal(got, want) {
			t.Fatalf("CAPA before TLS: %q, want %q", got, want)
		}
		c = e.dialTLS()
		c.cmd("CAPA", "+OK Capability list follows.")
		want = append(slices.Clone(base), "USER", "SASL PLAIN LOGIN", "IMPLEMENTATION mailagent")
		if got := c.multi(); !slices.Equal(got, want) {
			t.Fatalf("CAPA over TLS: %q, want %q", got, want)
		}
	})
	t.Run("policy", func(t *testing.T) {
		e := newEnv(t, func(o *Options, _ *auth.Authenticator) {
			o.Expire = "31"
			o.LoginDelay = 15 * time.Minute
			o.Implementation = "-"
		})
		e.addUser("u@example.org", "pw")
		c := e.dial()
		c.cmd("CAPA", "+OK Capability list follows.")
		want := append(slices.Clone(base), "USER", "SASL PLAIN LOGIN", "STLS", "EXPIRE 31", "LOGIN-DELAY 900")
		if got := c.multi(); !slices.Equal(got, want) {
			t.Fatalf("CAPA: %q, want %q", got, want)
		}
		c.cmd("USER u@example.org", "+OK")
		c.cmdPrefix("PASS pw", "+OK Logged in")
		c.cmd("CAPA", "+OK Capability list follows.")
		want = append(slices.Clone(base), "EXPIRE 31", "LOGIN-DELAY 900")
		if got := c.multi(); !slices.Equal(got, want) {
			t.Fatalf("CAPA in TRANSACTION: %q, want %q", got, want)
		}
		c.cmd("QUIT", "+OK Logging out, 0 messages left.")
		c = e.dial()
		c.cmd("USER u@example.org", "+OK")
		c.cmd("PASS pw", "-ERR [LOGIN-DELAY] Logged in too recently, try again later.")
	})
	if _, err := NewServer(Options{Maildirs: &maildir.Store{}, Authenticator: &auth.Authenticator{}, Expire: "soon"}); err == nil {
		t.Error("NewServer accepted EXPIRE soon")
	}
}

// TestInsecureAuthRefused: without AllowInsecureAuth, USER, PASS and AUTH
// are refused in the clear; after STLS the same session logs in.
func TestInsecureAuthRefused(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *auth.Authenticator) { o.AllowInsecureAuth = false })
	e.addUser("u@example.org", "pw")
	c := e.dial()
	c.cmd("USER u@example.org", replyInsecure)
	c.cmd("PASS pw", replyInsecure)
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00u@example.org\x00pw")), replyInsecure)
	c.cmd("AUTH", replyInsecure)
	// A command pipelined behind STLS must be dropped, not run under TLS.
	c.send("STLS\r\nUSER injected@example.org")
	c.expect("+OK Begin TLS negotiation now.")
	tc := tlsClient(t, c, e)
	tc.cmd("STLS", "-ERR TLS is already active.")
	tc.cmd("PASS pw", "-ERR No user name given (USER first).")
	tc.cmd("USER u@example.org", "+OK")
	tc.cmdPrefix("PASS pw", "+OK Logged in")
	tc.cmd("QUIT", "+OK Logging out, 0 messages left.")
	tc.eof()
}

// TestImplicitTLS logs in on the ServeTLS listener, and STLS there is
// refused.
func TestImplicitTLS(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *auth.Authenticator) { o.AllowInsecureAuth = false })
	u := e.addUser("u@example.org", "pw")
	e.deliver(u, sizedMessage("a", 100))
	c := e.dialTLS()
	c.cmd("STLS", "-ERR TLS is already active.")
	c.cmd("USER u@example.org", "+OK")
	c.cmd("PASS pw", "+OK Logged in, maildrop has 1 messages (100 octets).")
	c.cmd("QUIT", "+OK Logging out, 1 messages left.")
	c.eof()
}

// TestAUTH runs RFC 5034 exchanges: PLAIN and LOGIN with and without an
// initial response, the empty initial response, cancellation, bad
// base64 and the mechanism list.
func TestAUTH(t *testing.T) {
	e := newEnv(t)
	e.addUser("u@example.org", "pw")
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	plain := b64("\x00u@example.org\x00pw")

	c := e.dial()
	c.cmd("AUTH", "+OK")
	if got := c.multi(); !slices.Equal(got, []string{"PLAIN", "LOGIN"}) {
		t.Fatalf("AUTH lists %q", got)
	}
	c.cmd("AUTH CRAM-MD5", "-ERR Unsupported authentication mechanism.")
	c.cmd("AUTH PLAIN !!!", replyAuthFail)
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd("*", "-ERR Authentication cancelled.")
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd("not base64", replyAuthFail)
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd(plain, "+OK Logged in, maildrop has 0 messages (0 octets).")
	c.cmd("QUIT", "+OK Logging out, 0 messages left.")

	c = e.dial()
	c.cmd("auth plain "+plain, "+OK Logged in, maildrop has 0 messages (0 octets).")
	c.cmd("QUIT", "+OK Logging out, 0 messages left.")

	c = e.dial()
	c.cmd("AUTH LOGIN", "+ "+b64("Username:"))
	c.cmd(b64("u@example.org"), "+ "+b64("Password:"))
	c.cmd(b64("pw"), "+OK Logged in, maildrop has 0 messages (0 octets).")
	c.cmd("QUIT", "+OK Logging out, 0 messages left.")

	c = e.dial()
	c.cmd("AUTH LOGIN "+b64("u@example.org"), "+ "+b64("Password:"))
	c.cmd(b64("pw"), "+OK Logged in, maildrop has 0 messages (0 octets).")
	c.cmd("QUIT", "+OK Logging out, 0 messages left.")

	c = e.dial()
	c.cmd("AUTH LOGIN =", "+ "+b64("Username:")) // "=" is an empty initial response
	c.cmd("*", "-ERR Authentication cancelled.")
	c.cmd("AUTH PLAIN =", replyAuthFail)
	c.cmd("AUTH PLAIN "+b64("\x00u@example.org\x00wrong"), replyAuthFail)
	c.cmd("AUTH PLAIN "+plain, "+OK Logged in, maildrop has 0 messages (0 octets).")
}

// TestAuthFailures: a wrong password is "-ERR [AUTH]", the failure that
// reaches MaxAuthFailures gets a final "-ERR [AUTH]" line of its own and
// the connection ends, and once auth's throttle locks the client out it
// gets "-ERR [SYS/TEMP]" and is disconnected even with the right
// password.
func TestAuthFailures(t *testing.T) {
	e := newEnv(t, func(o *Options, a *auth.Authenticator) {
		o.MaxAuthFailures = 2
		a.Throttle = auth.NewThrottle(auth.ThrottleConfig{NetworkLimit: 3, BaseDelay: -1})
	})
	e.addUser("u@example.org", "pw")
	c := e.dial()
	c.cmd("USER u@example.org", "+OK")
	c.cmd("PASS wrong", replyAuthFail)
	c.cmd("USER nobody@example.org", "+OK")
	c.cmd("PASS pw", "-ERR [AUTH] Authentication failed; too many failures, closing the connection.")
	c.eof()

	c = e.dial()
	c.cmd("USER u@example.org", "+OK")
	c.cmd("PASS wrong again", replyAuthFail)
	c.cmd("USER u@example.org", "+OK")
	c.cmd("PASS pw", replyThrottle)
	c.eof()

	c = e.dial()
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00u@example.org\x00pw")), replyThrottle)
	c.eof()
}

// TestThirdAuthFailure: with the default MaxAuthFailures, the third
// failed login on a connection, by PASS or by AUTH, is answered with the
// final "-ERR [AUTH] ... closing the connection." line, then EOF; the
// two before it get Dovecot's plain "-ERR [AUTH] Authentication failed.".
func TestThirdAuthFailure(t *testing.T) {
	e := newEnv(t)
	e.addUser("u@example.org", "pw")
	const last = "-ERR [AUTH] Authentication failed; too many failures, closing the connection."
	c := e.dial()
	for range 2 {
		c.cmd("USER u@example.org", "+OK")
		c.cmd("PASS wrong", "-ERR [AUTH] Authentication failed.")
	}
	c.cmd("USER u@example.org", "+OK")
	c.cmd("PASS wrong", last)
	c.eof()

	c = e.dial()
	c.cmd("USER u@example.org", "+OK")
	c.cmd("PASS wrong", "-ERR [AUTH] Authentication failed.")
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00u@example.org\x00wrong")), "-ERR [AUTH] Authentication failed.")
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd(base64.StdEncoding.EncodeToString([]byte("\x00u@example.org\x00wrong")), last)
	c.eof()

	// The limit is per connection: a new one logs in.
	c = e.dial()
	c.cmd("USER u@example.org", "+OK")
	c.cmdPrefix("PASS pw", "+OK Logged in")
}

// TestLineLimits: a command line over 255 octets is refused and the
// session goes on; one of exactly 255 is read.
func TestLineLimits(t *testing.T) {
	e := newEnv(t)
	e.addUser("u@example.org", "pw")
	c := e.dial()
	c.cmd("NOOP "+strings.Repeat("x", 300), "-ERR Command line too long (255 octets at most).")
	c.cmd("NOOP "+strings.Repeat("x", 100_000), "-ERR Command line too long (255 octets at most).")
	c.cmd("USER "+strings.Repeat("x", 255-len("USER \r\n")), "+OK")
	c.cmd("USER "+strings.Repeat("x", 256-len("USER \r\n")), "-ERR Command line too long (255 octets at most).")
	// SASL responses may be longer (RFC 5034), up to maxSASLLine.
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd(strings.Repeat("A", maxSASLLine+10), "-ERR [AUTH] Response too long.")
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd(base64.StdEncoding.EncodeToString([]byte("\x00u@example.org\x00"+strings.Repeat("p", 1000))), replyAuthFail)
	c.cmd("USER u@example.org", "+OK")
	c.cmdPrefix("PASS pw", "+OK Logged in")
}

// TestPipelining sends a burst of commands in one write and gets every
// reply, in order.
func TestPipelining(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("u@example.org", "pw")
	m := sizedMessage("a", 150)
	for range 3 {
		e.deliver(u, m)
	}
	c := e.dial()
	c.send("USER u@example.org\r\nPASS pw\r\nSTAT\r\nRETR 1\r\nDELE 1\r\nLIST\r\nTOP 2 0\r\nRETR 3\r\nQUIT")
	c.expect("+OK")
	c.expectPrefix("+OK Logged in")
	c.expect("+OK 3 450")
	c.expect("+OK 150 octets")
	if got := strings.Join(c.multi(), "\r\n") + "\r\n"; got != crlf(m) {
		t.Fatalf("RETR 1: %q", got)
	}
	c.expect("+OK Message 1 deleted.")
	c.expect("+OK 2 messages (300 octets)")
	if got := c.multi(); !slices.Equal(got, []string{"2 150", "3 150"}) {
		t.Fatalf("LIST: %q", got)
	}
	c.expect("+OK")
	if got := c.multi(); !slices.Equal(got, []string{"From: a@example.net", "Subject: a", ""}) {
		t.Fatalf("TOP 2 0: %q", got)
	}
	c.expect("+OK 150 octets")
	c.multi()
	c.expect("+OK Logging out, 2 messages left.")
	c.eof()
}

// TestConnectionLimit refuses a connection past MaxConnsPerIP.
func TestConnectionLimit(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *auth.Authenticator) { o.MaxConnsPerIP = 1 })
	c := e.dial()
	nc, err := netDial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c2 := &testClient{t: t, nc: nc, r: newReader(nc)}
	c2.expect("-ERR [SYS/TEMP] Too many connections, try again later.")
	c2.eof()
	c.cmd("QUIT", "+OK Logging out.")
	c.eof()
}

// TestMessageFiles: a session moves new/ to cur/ at login; RETR sets
// \Seen at QUIT (TOP does not); deleted messages leave the disk.
func TestMessageFiles(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("u@example.org", "pw")
	for _, s := range []string{"a", "b", "c"} {
		e.deliver(u, sizedMessage(s, 100))
	}
	for _, f := range e.files(u) {
		if !strings.HasPrefix(f, "new/") {
			t.Fatalf("delivered %s, want it in new/", f)
		}
	}
	c := e.login("u@example.org", "pw")
	for _, f := range e.files(u) {
		if !strings.HasPrefix(f, "cur/") {
			t.Fatalf("after login %s is not in cur/", f)
		}
	}
	c.cmd("RETR 1", "+OK 100 octets")
	c.multi()
	c.cmd("TOP 2 5", "+OK")
	c.multi()
	c.cmd("RETR 3", "+OK 100 octets")
	c.multi()
	c.cmd("DELE 3", "+OK Message 3 deleted.")
	c.cmd("QUIT", "+OK Logging out, 2 messages left.")
	c.eof()
	snap := e.snapshot(u)
	if len(snap.Messages) != 2 {
		t.Fatalf("%d messages left, want 2", len(snap.Messages))
	}
	if !snap.Messages[0].HasFlag(maildir.FlagSeen) || snap.Messages[1].HasFlag(maildir.FlagSeen) {
		t.Fatalf("flags after RETR 1, TOP 2: %v, %v", snap.Messages[0].Flags, snap.Messages[1].Flags)
	}
	if f := e.files(u); !strings.HasSuffix(f[0], ":2,S") && !strings.HasSuffix(f[1], ":2,S") {
		t.Fatalf("no file carries the S flag: %q", f)
	}
}

// TestDotStuffingAndLineEndings retrieves messages with lines that begin
// with ".", bare LF, CRLF, a bare CR and no final line ending, and
// checks the exact bytes and the announced octet count.
func TestDotStuffingAndLineEndings(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("u@example.org", "pw")
	msgs := []struct{ raw, sent string }{
		{"Subject: dots\n\n.\n..\n.hidden\nend\n", "Subject: dots\r\n\r\n..\r\n...\r\n..hidden\r\nend\r\n"},
		{"Subject: crlf\r\n\r\nmixed\nlines\r\n", "Subject: crlf\r\n\r\nmixed\r\nlines\r\n"},
		{"Subject: cr\n\na\rb\n", "Subject: cr\r\n\r\na\rb\r\n"},
		{"Subject: open\n\nno newline", "Subject: open\r\n\r\nno newline\r\n"},
		{"Subject: long\n\n" + strings.Repeat(".", 70_000) + "\r\n.x\n", "Subject: long\r\n\r\n." + strings.Repeat(".", 70_000) + "\r\n..x\r\n"},
	}
	for _, m := range msgs {
		e.deliverSeq(u, m.raw)
	}
	c := e.login("u@example.org", "pw")
	for i, m := range msgs {
		c.send(fmt.Sprintf("RETR %d", i+1))
		head := c.expectPrefix("+OK ")
		var got strings.Builder
		for _, l := range c.multi() {
			got.WriteString(l + "\r\n")
		}
		if got.String() != m.sent {
			t.Errorf("message %d sent as %q, want %q", i+1, got.String(), m.sent)
		}
		// The octet count is the CRLF size before dot-stuffing; a
		// missing final line ending is not counted.
		unstuffed := strings.ReplaceAll("\r\n"+m.sent, "\r\n.", "\r\n")[2:]
		if !strings.HasSuffix(m.raw, "\n") {
			unstuffed = strings.TrimSuffix(unstuffed, "\r\n")
		}
		if want := fmt.Sprintf("+OK %d octets", len(unstuffed)); head != want {
			t.Errorf("message %d: %q, want %q", i+1, head, want)
		}
	}
	c.cmd("TOP 1 2", "+OK")
	if got := c.multi(); !slices.Equal(got, []string{"Subject: dots", "", "..", "..."}) {
		t.Errorf("TOP 1 2: %q", got)
	}
	c.cmd("TOP 4 100", "+OK")
	if got := c.multi(); !slices.Equal(got, []string{"Subject: open", "", "no newline"}) {
		t.Errorf("TOP 4 100: %q", got)
	}
}

// TestIdleTimeout: a silent session is told and disconnected after
// IdleTimeout (10 minutes, on the bubble's clock); it deletes nothing
// and releases the lock.
func TestIdleTimeout(t *testing.T) {
	inBubble(t, func(t *testing.T, e *testEnv, dial func() *testClient) {
		u := e.addUser("u@example.org", "pw")
		e.deliver(u, sizedMessage("a", 100))
		c := dial()
		c.cmd("USER u@example.org", "+OK")
		c.cmdPrefix("PASS pw", "+OK Logged in")
		c.cmd("DELE 1", "+OK Message 1 deleted.")
		// The next line is the server's: the timeout is the only event.
		expectTimeout(t, c, time.Now(), 10*time.Minute, "-ERR Disconnected for inactivity.")
		if f := e.files(u); len(f) != 1 {
			t.Fatalf("after a timeout the maildrop holds %q", f)
		}
		c = dial() // the lock was released before the close
		c.cmd("USER u@example.org", "+OK")
		c.cmdPrefix("PASS pw", "+OK Logged in")
		c.cmd("STAT", "+OK 1 100")
	})
}

// TestShutdown: Shutdown tells a waiting session to go, deletes nothing,
// and returns once it is gone; Serve returns ErrServerClosed.
func TestShutdown(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("u@example.org", "pw")
	e.deliver(u, sizedMessage("a", 100))
	c := e.login("u@example.org", "pw")
	c.cmd("DELE 1", "+OK Message 1 deleted.")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.expect("-ERR [SYS/TEMP] Server shutting down, try again later.")
	c.eof()
	if f := e.files(u); len(f) != 1 {
		t.Fatalf("after Shutdown the maildrop holds %q", f)
	}
	if _, err := netDial(e.addr); err == nil {
		t.Fatal("the listener still accepts after Shutdown")
	}
	if err := e.srv.Serve(listen(t)); err != ErrServerClosed {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

// TestUIDLFormat: the default is Dovecot's "%08Xu%08Xv" (lower-case hex),
// stable across sessions; other formats are configurable.
func TestUIDLFormat(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *auth.Authenticator) { o.UIDLFormat = "%f/%Lu.%05v%%" })
	u := e.addUser("u@example.org", "pw")
	d := e.deliver(u, sizedMessage("a", 100))
	c := e.login("u@example.org", "pw")
	snap := e.snapshot(u)
	c.cmd("UIDL 1", fmt.Sprintf("+OK 1 %s/%d.%05d%%", d.Key, snap.Messages[0].UID, snap.UIDValidity))

	m := maildir.Message{UID: 0x1a, Key: "1.M2P3.host"}
	for format, want := range map[string]string{
		DefaultUIDLFormat:   "0000001a5084d9e2",
		"%u":                "26",
		"%3v":               "135",
		"%08Xv-%{uid}":      "5084d9e2-26",
		"%{guid}":           "1.M2P3.host",
		"%XU{uidvalidity}x": "5084D9E2x",
	} {
		f, err := parseUIDLFormat(format)
		if err != nil {
			t.Errorf("%q: %v", format, err)
			continue
		}
		if got := f.format(0x5084d9e2, &m); got != want {
			t.Errorf("%q gives %q, want %q", format, got, want)
		}
	}
	for _, bad := range []string{"", "%m", "%08X", "%{uid", "%99u"} {
		if _, err := parseUIDLFormat(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestClose: Close ends sessions at once; a session in TRANSACTION
// deletes nothing, and Serve and ListenAndServe return ErrServerClosed.
func TestClose(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *auth.Authenticator) { o.Addr = "127.0.0.1:0" })
	u := e.addUser("u@example.org", "pw")
	e.deliver(u, sizedMessage("a", 100))
	c := e.login("u@example.org", "pw")
	c.cmd("DELE 1", "+OK Message 1 deleted.")
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	c.eof()
	e.waitUnlocked(u)
	if f := e.files(u); len(f) != 1 {
		t.Fatalf("after Close the maildrop holds %q", f)
	}
	if err := e.srv.ListenAndServe(); err != ErrServerClosed {
		t.Fatalf("ListenAndServe after Close: %v", err)
	}
}

// TestWrongSizeInName: a file whose name understates its size (S=) is
// still sent whole.
func TestWrongSizeInName(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("u@example.org", "pw")
	body := "Subject: big\n\n" + strings.Repeat("line\n", 100)
	cur := filepath.Join(e.base, u.Maildir, "cur")
	if err := os.MkdirAll(cur, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cur, "1700000000.M1P1.other,S=20,W=22:2,"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e.login("u@example.org", "pw")
	c.cmdPrefix("RETR 1", "+OK ")
	if got := strings.Join(c.multi(), "\r\n") + "\r\n"; got != crlf(body) {
		t.Fatalf("sent %d octets, want %d", len(got), len(crlf(body)))
	}
}

// TestRemovedByAnotherSession: a message expunged by someone else (IMAP,
// another process) while a session holds its snapshot is refused, and
// DELE of it still succeeds at QUIT.
func TestRemovedByAnotherSession(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("u@example.org", "pw")
	e.deliverSeq(u, sizedMessage("a", 100), sizedMessage("b", 100))
	c := e.login("u@example.org", "pw")
	ctx := context.Background()
	md, err := e.ms.Open(ctx, u.Maildir)
	if err != nil {
		t.Fatal(err)
	}
	defer md.Close()
	in, err := md.Folder(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	snap := e.snapshot(u)
	if _, err := in.Expunge(ctx, []uint32{snap.Messages[0].UID}); err != nil {
		t.Fatal(err)
	}
	c.cmd("RETR 1", "-ERR Message 1 was removed by another session.")
	c.cmd("TOP 1 0", "-ERR Message 1 was removed by another session.")
	c.cmd("DELE 1", "+OK Message 1 deleted.")
	c.cmd("RETR 2", "+OK 100 octets")
	c.multi()
	c.cmd("QUIT", "+OK Logging out, 1 messages left.")
	c.eof()
	if f := e.files(u); len(f) != 1 || !strings.HasSuffix(f[0], ":2,S") {
		t.Fatalf("maildrop holds %q, want message 2 seen", f)
	}
}

// TestUIDLAcrossRestarts: the same message has the same UIDL after the
// server and its maildir.Store are replaced (a restart).
func TestUIDLAcrossRestarts(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("u@example.org", "pw")
	e.deliverSeq(u, sizedMessage("a", 100), sizedMessage("b", 100))
	c := e.login("u@example.org", "pw")
	c.cmd("UIDL", "+OK")
	before := c.multi()
	c.cmd("QUIT", "+OK Logging out, 2 messages left.")

	ms, err := newStore(e.base)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	srv, err := NewServer(Options{Hostname: "pop.example.org", Maildirs: ms, Authenticator: e.auth, AllowInsecureAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t)
	go srv.Serve(l)
	defer srv.Close()
	e.addr = l.Addr().String()
	c = e.login("u@example.org", "pw")
	c.cmd("UIDL", "+OK")
	if after := c.multi(); !slices.Equal(before, after) || len(after) != 2 {
		t.Fatalf("UIDL before a restart %q, after %q", before, after)
	}
}

// TestTLSHandshakeFailure: plain text on the implicit-TLS listener and
// garbage after STLS end those connections only.
func TestTLSHandshakeFailure(t *testing.T) {
	e := newEnv(t)
	e.addUser("u@example.org", "pw")
	nc, err := netDial(e.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("USER u@example.org\r\n"))
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(nc); err != nil { // a TLS alert, then EOF
		t.Fatalf("plain text on the TLS listener: %v", err)
	}

	c := e.dial()
	c.cmd("STLS", "+OK Begin TLS negotiation now.")
	c.send("this is not a ClientHello")
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c.r); err != nil {
		t.Fatalf("garbage after STLS: %v", err)
	}

	c = e.login("u@example.org", "pw")
	c.cmd("QUIT", "+OK Logging out, 0 messages left.")
}

// TestTemporaryFailures: a directory that fails and a Maildir that cannot
// be opened are "-ERR [SYS/TEMP]", and the session stays usable.
func TestTemporaryFailures(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("u@example.org", "pw")
	// A file where the Maildir should be.
	p := filepath.Join(e.base, u.Maildir)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e.dial()
	c.cmd("USER u@example.org", "+OK")
	c.cmd("PASS pw", "-ERR [SYS/TEMP] Cannot open the mailbox, try again later.")
	e.dir.Close()
	c.cmd("USER u@example.org", "+OK")
	c.cmd("PASS pw", replyTempFail)
	c.cmd("QUIT", "+OK Logging out.")
	c.eof()
}

// TestBadBase64Counted: a SASL response that is not base64 is a failed
// login, counted towards MaxAuthFailures like a wrong password.
func TestBadBase64Counted(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	c.cmd("AUTH PLAIN !!!", replyAuthFail)
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd("***", replyAuthFail)
	c.cmd("AUTH LOGIN ###", replyAuthFailLast)
}

package smtp

import (
	"bufio"
	"encoding/base64"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mailagent/mailagent/internal/memnet"
)

// inBubble runs f in a synctest bubble against a server of role on an
// in-memory listener, so that deadlines follow the bubble's clock: the
// tests below wait minutes of it and no real time.
func inBubble(t *testing.T, role Role, tune func(*Options), f func(t *testing.T, st *testStack, dial func() *client)) {
	synctest.Test(t, func(t *testing.T) {
		st := newTestStack(t)
		o := st.options(role)
		if tune != nil {
			tune(&o)
		}
		l := memnet.Listen()
		st.serveOn(o, l)
		dial := func() *client {
			c, err := l.Dial()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return &client{t: t, conn: c, r: bufio.NewReader(c)}
		}
		f(t, st, dial)
	})
}

// expectTimeout reads the reply to a client that ran into a limit: a
// 421 4.4.2 within want (±1 s) of start, then the close.
func expectTimeout(t *testing.T, c *client, start time.Time, want time.Duration) {
	t.Helper()
	lines, err := c.reply()
	if err != nil || len(lines) != 1 || !strings.HasPrefix(lines[0], "421 4.4.2 ") {
		t.Fatalf("got %q, %v; want 421 4.4.2", lines, err)
	}
	if got := time.Since(start); got < want-time.Second || got > want+time.Second {
		t.Fatalf("421 after %v, want %v", got, want)
	}
	if l, err := c.r.ReadString('\n'); err == nil {
		t.Fatalf("after the 421: %q, want the connection closed", l)
	}
}

// wantNoMessage fails the test if alice received a message: a
// transaction cut off must leave nothing behind.
func wantNoMessage(t *testing.T, st *testStack) {
	t.Helper()
	if n := len(st.messages("alice@local.example", "")); n != 0 {
		t.Fatalf("%d messages stored, want none", n)
	}
}

// TestCommandLineDeadline: a command line must arrive whole within
// ReadTimeout (5 minutes by default), on every role; a client sending
// one byte every 5 seconds no longer keeps the connection.
func TestCommandLineDeadline(t *testing.T) {
	for _, role := range []Role{MX, LMTP, Submission} {
		t.Run(role.String(), func(t *testing.T) {
			tune := func(o *Options) { o.LoginTimeout = -1 } // the line limit alone
			inBubble(t, role, tune, func(t *testing.T, st *testStack, dial func() *client) {
				c := dial()
				c.run("S: 220")
				start := time.Now()
				memnet.Trickle(t, c.conn, strings.Split("NOOP"+strings.Repeat(" x", 200)+"\r\n", ""), 5*time.Second)
				expectTimeout(t, c, start, 5*time.Minute)
			})
		})
	}
}

// TestCommandLineDeadlineEachLine: the deadline is per line, so a
// session of many prompt commands lasts as long as the client likes.
func TestCommandLineDeadlineEachLine(t *testing.T) {
	inBubble(t, MX, nil, func(t *testing.T, st *testStack, dial func() *client) {
		c := dial()
		c.run("S: 220\nC: EHLO client.example\nS: 250")
		for range 5 {
			time.Sleep(4 * time.Minute)
			c.run("C: NOOP\nS: 250")
		}
		c.run("C: QUIT\nS: 221")
	})
}

// TestDataRate: DATA must average 500 bytes/s after its first 10 s. A
// client that sends 10,000 bytes and then trickles is cut off once the
// bytes it sent no longer cover the time (10 s + 20 s), the
// transaction is abandoned, and nothing is stored.
func TestDataRate(t *testing.T) {
	for _, role := range []Role{MX, LMTP} {
		t.Run(role.String(), func(t *testing.T) {
			inBubble(t, role, nil, func(t *testing.T, st *testStack, dial func() *client) {
				c := dial()
				hello := "EHLO"
				if role == LMTP {
					hello = "LHLO"
				}
				c.run("S: 220\nC: " + hello + " client.example\nS: 250" + toAlice)
				start := time.Now()
				head := "Subject: slow\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 100)
				head = head[:10_000]
				// 10,000 bytes at once, then one byte every 5 s.
				memnet.Trickle(t, c.conn, append([]string{head}, strings.Split(strings.Repeat("y", 1000), "")...), 5*time.Second)
				expectTimeout(t, c, start, 30*time.Second)
				wantNoMessage(t, st)
			})
		})
	}
}

// TestDataRateSlowButSteady: a client above the rate is never cut off,
// however long its message takes.
func TestDataRateSlowButSteady(t *testing.T) {
	inBubble(t, MX, nil, func(t *testing.T, st *testStack, dial func() *client) {
		c := dial()
		c.run("S: 220\nC: EHLO client.example\nS: 250" + toAlice)
		line := strings.Repeat("z", 598) + "\r\n"
		c.send("Subject: steady\r\n\r\n")
		for range 600 { // 600 bytes a second for 10 minutes
			c.send(line)
			time.Sleep(time.Second)
		}
		c.run(`R: ".\r\n"` + "\nS: 250")
		msgs := st.messages("alice@local.example", "")
		if len(msgs) != 1 || strings.Count(msgs[0], line) != 600 {
			t.Fatalf("stored %d messages, want the whole message", len(msgs))
		}
	})
}

// TestBDATRate: the rate covers a message's BDAT chunks and the
// commands between them, so small chunks sent slowly are cut off too.
func TestBDATRate(t *testing.T) {
	inBubble(t, MX, nil, func(t *testing.T, st *testStack, dial func() *client) {
		c := dial()
		c.run(`S: 220
			C: EHLO client.example
			S: 250
			C: MAIL FROM:<sender@far.example>
			S: 250
			C: RCPT TO:<alice@local.example>
			S: 250`)
		start := time.Now()
		// One byte every 2 s, each in its own chunk: 9 bytes of
		// command and chunk every 2 s, 4.5 bytes/s. Cut off when they
		// no longer cover the time: just after 10 s, after 6 chunks.
		memnet.Trickle(t, c.conn, slices.Repeat([]string{"BDAT 1\r\nx"}, 100), 2*time.Second)
		for range 6 {
			c.run("S: 250")
		}
		expectTimeout(t, c, start, 10*time.Second)
		wantNoMessage(t, st)
	})
}

// TestSubmissionLoginTimeout: submission must see a successful AUTH
// within 60 s of the connection, however many commands come meanwhile;
// once logged in, that limit is gone.
func TestSubmissionLoginTimeout(t *testing.T) {
	inBubble(t, Submission, nil, func(t *testing.T, st *testStack, dial func() *client) {
		c := dial()
		start := time.Now()
		c.run("S: 220\nC: EHLO client.example\nS: 250")
		for range 5 {
			time.Sleep(10 * time.Second)
			c.run("C: NOOP\nS: 250")
		}
		expectTimeout(t, c, start, 60*time.Second)

		c = dial()
		plain := base64.StdEncoding.EncodeToString([]byte("\x00alice@local.example\x00" + testPassword))
		c.run(`S: 220
			C: EHLO client.example
			S: 250
			C: STARTTLS
			S: 220
			TLS
			C: EHLO client.example
			S: 250
			C: AUTH PLAIN ` + plain + `
			S: 235`)
		time.Sleep(2 * time.Minute)
		c.run("C: NOOP\nS: 250\nC: QUIT\nS: 221")
	})
}

// TestBDATClientGoneMidChunk: a client that stops sending inside the
// LAST chunk has not sent the message: nothing is stored and no 250
// is given, however the connection ended.
func TestBDATClientGoneMidChunk(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	c := dial(t, "tcp", addr)
	c.run(`S: 220
		C: EHLO client.example
		S: 250
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		R: "BDAT 100 LAST\r\nSubject: cut\r\n\r\nonly part"`)
	if err := c.conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	for {
		lines, err := c.reply()
		if len(lines) > 0 && strings.HasPrefix(lines[len(lines)-1], "250") {
			t.Fatalf("a cut chunk was answered %q", lines)
		}
		if err != nil {
			break
		}
	}
	wantNoMessage(t, st)
}

// TestSubmissionsLoginTimeout: the login limit holds on implicit TLS
// (port 465) too, the handshake counting against it.
func TestSubmissionsLoginTimeout(t *testing.T) {
	tune := func(o *Options) { o.ImplicitTLS = true }
	inBubble(t, Submission, tune, func(t *testing.T, st *testStack, dial func() *client) {
		c := dial()
		start := time.Now()
		c.startTLS()
		c.run("S: 220\nC: EHLO client.example\nS: 250")
		for range 5 {
			time.Sleep(10 * time.Second)
			c.run("C: NOOP\nS: 250")
		}
		expectTimeout(t, c, start, 60*time.Second)
	})
}

// TestTimeoutLoggedWithSession: the log line of a timeout names the
// session, as the session's other lines do, and the cause, which the
// reply does not.
func TestTimeoutLoggedWithSession(t *testing.T) {
	var buf syncBuffer
	tune := func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&buf, nil)) }
	inBubble(t, MX, tune, func(t *testing.T, st *testStack, dial func() *client) {
		c := dial()
		c.run("S: 220\nC: EHLO client.example\nS: 250")
		start := time.Now()
		expectTimeout(t, c, start, 5*time.Minute)
		var line string
		for l := range strings.Lines(buf.String()) {
			if strings.Contains(l, "connection timed out") {
				line = l
			}
		}
		if !strings.Contains(line, "session=") || !strings.Contains(line, `cause="command line timeout"`) {
			t.Fatalf("timeout log line %q, want the session ID and the cause", line)
		}
	})
}

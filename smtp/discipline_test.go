package smtp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailagent/mailagent/auth"
)

const greet = "S: 220\nC: EHLO client.far.example\nS: 250\n"

func TestSizeLimit(t *testing.T) {
	st := newTestStack(t)
	o := st.options(MX)
	o.MaxMessageBytes = 1000
	addr, _ := st.serve(o)
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789012345678901234567890123456789\r\n", 30)
	c := dial(t, "tcp", addr)
	c.run(`
		S: 220
		C: EHLO client.far.example
		S: 250
		H: SIZE 1000
		C: MAIL FROM:<sender@far.example> SIZE=2000
		S: 552 5.3.4
		C: MAIL FROM:<sender@far.example> SIZE=900
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: DATA
		S: 354
		R: ` + fmt.Sprintf("%q", big+".\r\n") + `
		S: 552 5.3.4
		# The connection stays usable and in step.
		C: NOOP
		S: 250`)
	if n := len(st.messages("alice@local.example", "")); n != 0 {
		t.Fatalf("oversized message stored (%d messages)", n)
	}
}

func TestRecipientLimit(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	var b strings.Builder
	b.WriteString(greet + "C: MAIL FROM:<sender@far.example>\nS: 250\n")
	for range 100 {
		b.WriteString("C: RCPT TO:<alice@local.example>\nS: 250\n")
	}
	b.WriteString("C: RCPT TO:<bob@local.example>\nS: 452 4.5.3\n")
	b.WriteString(fmt.Sprintf("C: DATA\nS: 354\nR: %q\nS: 250\n", testMessage+".\r\n"))
	dial(t, "tcp", addr).run(b.String())
	if n := len(st.messages("alice@local.example", "")); n != 1 {
		t.Errorf("alice has %d messages, want 1", n)
	}
	if n := len(st.messages("bob@local.example", "")); n != 0 {
		t.Errorf("bob, the 101st recipient, got %d messages", n)
	}
}

func TestLineLength(t *testing.T) {
	st := newTestStack(t)
	o := st.options(MX)
	o.MaxLineLength = 200
	addr, _ := st.serve(o)
	dial(t, "tcp", addr).run(greet + `
		C: NOOP ` + strings.Repeat("x", 300) + `
		S: 500
		CLOSED`)
	dial(t, "tcp", addr).run(greet + `
		` + toAlice + `
		R: ` + fmt.Sprintf("%q", "Subject: x\r\n\r\n"+strings.Repeat("y", 300)+"\r\n.\r\n") + `
		S: 500
		S: 500
		CLOSED`)
	if n := len(st.messages("alice@local.example", "")); n != 0 {
		t.Fatalf("message with an over-long line stored")
	}
}

// TestSmuggling sends, for each end-of-data variant that some software
// accepts, a message in which that variant is followed by a complete
// second transaction, then the real end of data. Exactly one reply must
// follow, a refusal; the smuggled transaction must never run, and
// nothing is stored.
func TestSmuggling(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	smuggled := "MAIL FROM:<evil@far.example>\r\nRCPT TO:<bob@local.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n"
	for i, v := range []string{"\n.\n", "\n.\r\n", "\r.\n", "\r.\r\n", "\r\n.\n", "\r\n.\r", "\n.\r", "\r\n\x00.\r\n"} {
		t.Run(fmt.Sprintf("%q", v), func(t *testing.T) {
			subject := fmt.Sprintf("outer %d", i)
			msg := "Subject: " + subject + "\r\n\r\nbody" + v + smuggled + ".\r\n"
			before := len(st.messages("alice@local.example", ""))
			c := dial(t, "tcp", addr)
			c.run(greet + `
				` + toAlice + `
				R: ` + fmt.Sprintf("%q", msg))
			lines, err := c.reply()
			if err != nil {
				t.Fatal(err)
			}
			c.run("C: QUIT\nS: 221")
			got := st.messages("alice@local.example", "")[before:]
			// Every variant has a bare CR or LF, or a NUL: the whole
			// message is refused once read to its real end.
			if !strings.HasPrefix(lines[0], "550 5.6.0") || len(got) != 0 {
				t.Fatalf("reply %q, stored %q", lines, got)
			}
			if n := len(st.messages("bob@local.example", "")); n != 0 {
				t.Fatalf("smuggled message delivered")
			}
		})
	}
}

func TestBareLineEndingsRefused(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	for _, body := range []string{"line\nline\r\n", "line\rline\r\n", "line\r\n\rx\r\n", "a\x00b\r\n"} {
		dial(t, "tcp", addr).run(greet + fmt.Sprintf(`
			`+toAlice+`
			R: %q
			S: 550 5.6.0
			C: NOOP
			S: 250`, "Subject: x\r\n\r\n"+body+"\r\n.\r\n"))
	}
	if n := len(st.messages("alice@local.example", "")); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

// TestSTARTTLSInjection sends a command in the same packet as STARTTLS:
// it must be discarded, not answered inside the TLS session.
func TestSTARTTLSInjection(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	dial(t, "tcp", addr).run(greet + `
		R: "STARTTLS\r\nMAIL FROM:<evil@far.example>\r\n"
		S: 220
		TLS
		# RFC 3207: the client introduces itself again.
		C: MAIL FROM:<sender@far.example>
		S: 503 5.5.1
		C: EHLO client.far.example
		S: 250
		H: Hello client.far.example
		N: STARTTLS
		C: RCPT TO:<alice@local.example>
		S: 502 5.5.1
		C: STARTTLS
		S: 502 5.5.1 Already running in TLS`)
}

// TestSTARTTLSRefused covers the replies the connection gives STARTTLS
// in place of go-smtp's: an argument is a syntax error that leaves
// STARTTLS available, and a server without TLS neither offers nor
// starts it. Neither refusal may cost the client its EHLO.
func TestSTARTTLSRefused(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	dial(t, "tcp", addr).run(greet + `
		C: STARTTLS now
		S: 501 5.5.4
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: STARTTLS
		S: 220
		TLS`)

	o := st.options(MX)
	o.TLSConfig = nil
	addr, _ = st.serve(o)
	dial(t, "tcp", addr).run(greet + `
		N: STARTTLS
		C: STARTTLS
		S: 502 5.5.1 TLS not supported
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: QUIT
		S: 221`)
}

func TestReadTimeout(t *testing.T) {
	st := newTestStack(t)
	o := st.options(MX)
	o.ReadTimeout = time.Second
	addr, _ := st.serve(o)
	dial(t, "tcp", addr).run(greet + `
		S: 421 4.4.2
		CLOSED`)
	// Stalling inside DATA is bounded too, and leaves nothing behind.
	c := dial(t, "tcp", addr)
	c.run(greet + `
		` + toAlice + `
		R: "Subject: half\r\n\r\nhalf a mess"`)
	for {
		if _, err := c.reply(); err != nil {
			break
		}
	}
	if n := len(st.messages("alice@local.example", "")); n != 0 {
		t.Fatalf("stalled message stored")
	}
}

func TestConnectionLimits(t *testing.T) {
	st := newTestStack(t)
	o := st.options(MX)
	o.MaxConnsPerIP = 2
	addr, _ := st.serve(o)
	a := dial(t, "tcp", addr)
	a.run("S: 220")
	dial(t, "tcp", addr).run("S: 220")
	dial(t, "tcp", addr).run("S: 421 4.7.0\nCLOSED")
	a.run("C: QUIT\nS: 221\nCLOSED")
	// The slot is freed once the server has seen the close.
	waitFor(t, func() bool {
		c := dial(t, "tcp", addr)
		l, err := c.reply()
		return err == nil && strings.HasPrefix(l[0], "220")
	})

	o = st.options(MX)
	o.MaxConns = 1
	addr, _ = st.serve(o)
	dial(t, "tcp", addr).run("S: 220")
	dial(t, "tcp", addr).run("S: 421 4.7.0\nCLOSED")
}

// waitFor polls real state until cond holds, for events a test cannot
// observe directly.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAuthThrottle(t *testing.T) {
	st := newTestStack(t)
	st.auth.Throttle = auth.NewThrottle(auth.ThrottleConfig{NetworkLimit: 2, BaseDelay: -1})
	addr, _ := st.serve(st.options(Submission))
	start := `
		S: 220
		C: EHLO laptop
		S: 250
		C: STARTTLS
		S: 220
		TLS
		C: EHLO laptop
		S: 250`
	dial(t, "tcp", addr).run(start + `
		C: AUTH PLAIN ` + plainIR("alice@local.example", "bad") + `
		S: 535 5.7.8
		C: AUTH PLAIN ` + plainIR("alice@local.example", "bad") + `
		S: 535 5.7.8`)
	// The network is locked out now: even the right password is refused.
	dial(t, "tcp", addr).run(start + `
		C: AUTH PLAIN ` + plainIR("alice@local.example", testPassword) + `
		S: 454 4.7.0`)
}

func TestDisconnectMidDataLeavesNothing(t *testing.T) {
	st := newTestStack(t)
	addr, srv := st.serve(st.options(MX))
	c := dial(t, "tcp", addr)
	c.run(greet + `
		` + toAlice + `
		R: "Subject: cut\r\n\r\nthe client goes away here"`)
	c.conn.Close()
	// Shutdown returns once every connection has ended.
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(st.messages("alice@local.example", "")); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

func TestShutdownLetsTransactionFinish(t *testing.T) {
	st := newTestStack(t)
	addr, srv := st.serve(st.options(MX))
	busy := dial(t, "tcp", addr)
	busy.run(greet + `
		` + toAlice + `
		R: "Subject: in flight\r\n\r\nfirst half, "`)
	idle := dial(t, "tcp", addr)
	idle.run(greet)

	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	// The idle client is told first; from then on Shutdown is waiting.
	idle.run("S: 421 4.3.2\nCLOSED")
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a transaction in flight", err)
	default:
	}
	// The client finishes and says goodbye: 250, then 221 and a clean
	// close (not a reset that could lose the 250).
	busy.run(`
		R: "second half.\r\n.\r\n"
		S: 250 2.0.0
		C: QUIT
		S: 221
		CLOSED`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := st.messages("alice@local.example", "")
	if len(got) != 1 || !strings.HasSuffix(got[0], "Subject: in flight\r\n\r\nfirst half, second half.\r\n") {
		t.Fatalf("got %q", got)
	}
	if _, err := dialErr(addr); err == nil {
		t.Fatal("server still accepts connections after Shutdown")
	}
}

// TestShutdownAfterTransaction covers the other ends of a transaction
// that Shutdown waits for: QUIT pipelined with the end of data gets its
// 221, and a command other than QUIT is told 421.
func TestShutdownAfterTransaction(t *testing.T) {
	for _, tc := range []struct{ name, after, want string }{
		{"pipelined QUIT", "QUIT\r\n", "221 2.0.0"},
		{"another transaction", "MAIL FROM:<sender@far.example>\r\n", "421 4.3.2"},
		{"NOOP", "NOOP\r\n", "421 4.3.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newTestStack(t)
			addr, srv := st.serve(st.options(MX))
			c := dial(t, "tcp", addr)
			c.run(greet + toAlice)
			done := make(chan error, 1)
			go func() { done <- srv.Shutdown(context.Background()) }()
			// Shutdown has begun once the server refuses new connections.
			waitFor(t, func() bool { _, err := dialErr(addr); return err != nil })
			c.run(fmt.Sprintf(`
				R: %q
				S: 250 2.0.0
				S: %s
				CLOSED`, testMessage+".\r\n"+tc.after, tc.want))
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n := len(st.messages("alice@local.example", "")); n != 1 {
				t.Fatalf("alice has %d messages, want 1", n)
			}
		})
	}
}

// TestCRBeforeEndOfData sends content whose last line ends CR CRLF, then
// "." CRLF: the real end of data. The refusal comes at once (the client
// waits far less than the server's read timeout), nothing is stored,
// and the connection goes on with a transaction stored exactly once.
func TestCRBeforeEndOfData(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	for _, tls := range []bool{false, true} {
		c := dial(t, "tcp", addr)
		c.run(greet)
		if tls {
			c.run("C: STARTTLS\nS: 220\nTLS\nC: EHLO client.far.example\nS: 250")
		}
		c.run(toAlice + `
			R: "Subject: cr\r\n\r\ntext\r\r\n.\r\n"`)
		_ = c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		c.run(`S: 550 5.6.0`)
		_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		c.run(toAlice + fmt.Sprintf(`
			R: %q
			S: 250 2.0.0
			C: QUIT
			S: 221`, "Subject: second\r\n\r\nclean\r\n.\r\n"))
	}
	got := st.messages("alice@local.example", "")
	if len(got) != 2 {
		t.Fatalf("alice has %d messages, want 2", len(got))
	}
	for _, m := range got {
		if !strings.HasSuffix(m, "Subject: second\r\n\r\nclean\r\n") {
			t.Fatalf("stored %q", m)
		}
	}
}

// TestBDAT covers CHUNKING, which go-smtp always offers: the chunks are
// checked like DATA, and RSET between chunks leaves nothing behind.
func TestBDAT(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	part1, part2 := "Subject: chunked\r\n\r\n", "in two chunks\r\n"
	dial(t, "tcp", addr).run(greet + fmt.Sprintf(`
		H: CHUNKING
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		R: %q
		S: 250 2.0.0 Continue
		R: %q
		S: 250 2.0.0
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		R: %q
		S: 550 5.6.0
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		R: %q
		S: 250 2.0.0 Continue
		C: RSET
		S: 250
		C: QUIT
		S: 221`,
		fmt.Sprintf("BDAT %d\r\n%s", len(part1), part1),
		fmt.Sprintf("BDAT %d LAST\r\n%s", len(part2), part2),
		"BDAT 15 LAST\r\nSubject: x\n\nx\n\n",
		fmt.Sprintf("BDAT %d\r\n%s", len(part1), part1)))
	got := st.messages("alice@local.example", "")
	if len(got) != 1 || !strings.HasSuffix(got[0], part1+part2) {
		t.Fatalf("got %q", got)
	}
}

// A SASL response that breaks PLAIN's syntax (the empty "=" response, a
// response without its NULs) is a failed login, answered and counted as
// a wrong password is, not a temporary failure a client may repeat
// forever.
func TestMalformedSASLCounted(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(Submission))
	dial(t, "tcp", addr).run(tlsHello + `
		C: AUTH PLAIN
		S: 334
		C: =
		S: 535 5.7.8
		C: AUTH PLAIN bm8gc2VwYXJhdG9ycw==
		S: 535 5.7.8
		C: AUTH PLAIN
		S: 334
		C: YQBi
		S: 421 4.7.0`)
}

// TestBadBase64Counted: a SASL response that is not base64 is answered
// 501 (RFC 4954 §4) and counts as a failed login, in the AUTH line and
// after a 334 alike; the last allowed ends the connection.
func TestBadBase64Counted(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(Submission))
	dial(t, "tcp", addr).run(tlsHello + `
		C: AUTH PLAIN !!!notbase64
		S: 501 5.5.2
		C: AUTH PLAIN
		S: 334
		C: ***
		S: 501 5.5.2
		C: AUTH LOGIN
		S: 334
		C: %%%
		S: 421 4.7.0
		CLOSED`)
}

// One MX connection cannot walk the directory: after MaxRecipientErrors
// recipients refused for good, over its transactions together, the last
// refusal is 421 4.7.0 and the connection ends. A temporary refusal (too
// many recipients) does not count; LMTP has no such limit.
func TestRecipientErrorLimit(t *testing.T) {
	st := newTestStack(t)
	o := st.options(MX)
	o.MaxRecipientErrors = 5
	o.MaxRecipients = 2
	addr, _ := st.serve(o)
	var b strings.Builder
	b.WriteString(greet + "C: MAIL FROM:<sender@far.example>\nS: 250\n")
	b.WriteString("C: RCPT TO:<alice@local.example>\nS: 250\nC: RCPT TO:<alice@local.example>\nS: 250\n")
	b.WriteString("C: RCPT TO:<alice@local.example>\nS: 452 4.5.3\n")
	b.WriteString("C: RSET\nS: 250\nC: MAIL FROM:<sender@far.example>\nS: 250\n")
	for i := range 3 {
		fmt.Fprintf(&b, "C: RCPT TO:<nobody%d@local.example>\nS: 550 5.1.1\n", i)
	}
	b.WriteString("C: RSET\nS: 250\nC: MAIL FROM:<sender@far.example>\nS: 250\n")
	b.WriteString("C: RCPT TO:<nobody3@local.example>\nS: 550 5.1.1\n")
	b.WriteString("C: RCPT TO:<nobody4@local.example>\nS: 421 4.7.0\nCLOSED\n")
	dial(t, "tcp", addr).run(b.String())

	lo := st.options(LMTP)
	lo.MaxRecipientErrors = 2
	laddr, _ := st.serve(lo)
	b.Reset()
	b.WriteString("S: 220\nC: LHLO postfix.local\nS: 250\nC: MAIL FROM:<sender@far.example>\nS: 250\n")
	for i := range 4 {
		fmt.Fprintf(&b, "C: RCPT TO:<nobody%d@local.example>\nS: 550 5.1.1\n", i)
	}
	b.WriteString("C: RCPT TO:<alice@local.example>\nS: 250\n")
	dial(t, "tcp", laddr).run(b.String())
}

// TestJunkCommandLimit: commands that deliver nothing end an MX or
// submission connection one past MaxJunkCommands, each accepted message
// starts the count again, and LMTP has no such limit.
func TestJunkCommandLimit(t *testing.T) {
	st := newTestStack(t)
	o := st.options(MX)
	o.MaxJunkCommands = 4
	addr, _ := st.serve(o)
	var b strings.Builder
	b.WriteString(greet + "C: NOOP\nS: 250\nC: RSET\nS: 250\nC: VRFY alice\nS: 252\n")
	b.WriteString(toAlice + `
		R: "Subject: one\r\n\r\ntext\r\n.\r\n"
		S: 250 2.0.0
`)
	for range 4 {
		b.WriteString("C: NOOP\nS: 250\n")
	}
	b.WriteString("C: HELP\nS: 421 4.7.0\nCLOSED\n")
	dial(t, "tcp", addr).run(b.String())
	if got := st.messages("alice@local.example", ""); len(got) != 1 {
		t.Fatalf("%d messages delivered, want 1", len(got))
	}

	lo := st.options(LMTP)
	lo.MaxJunkCommands = 2
	laddr, _ := st.serve(lo)
	b.Reset()
	b.WriteString("S: 220\nC: LHLO postfix.local\nS: 250\n")
	for range 5 {
		b.WriteString("C: NOOP\nS: 250\nC: RSET\nS: 250\n")
	}
	b.WriteString("C: QUIT\nS: 221\n")
	dial(t, "tcp", laddr).run(b.String())
}

// TestParamsRefused: a MAIL or RCPT parameter given twice, and SMTPUTF8
// with a value, are refused 501 5.5.4 before go-smtp takes them; the
// transaction goes on with a correct command.
func TestParamsRefused(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	dial(t, "tcp", addr).run(greet + `
		C: MAIL FROM:<sender@far.example> RET=FULL RET=HDRS
		S: 501 5.5.4
		C: MAIL FROM:<sender@far.example> SMTPUTF8=yes
		S: 501 5.5.4
		C: MAIL FROM:<"odd>name"@far.example> BODY=8BITMIME body=7bit
		S: 501 5.5.4
		C: MAIL FROM:<sender@far.example> RET=FULL ENVID=x BODY=8BITMIME SMTPUTF8
		S: 250
		C: RCPT TO:<alice@local.example> NOTIFY=NEVER NOTIFY=SUCCESS
		S: 501 5.5.4
		C: RCPT TO:<alice@local.example> NOTIFY=NEVER ORCPT=rfc822;alice@local.example
		S: 250
		C: QUIT
		S: 221`)
}

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
// follow, the smuggled transaction must never run, and at most the
// outer message may be stored.
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
			switch {
			case strings.HasPrefix(lines[0], "550 5.6.0"):
				if len(got) != 0 {
					t.Fatalf("refused message stored: %q", got)
				}
			case strings.HasPrefix(lines[0], "250"):
				// go-smtp drops the CR of "CRLF . CR": the sequence is
				// ordinary content then, and the smuggled text stays in
				// the body of the one message.
				if v != "\r\n.\r" || len(got) != 1 || !strings.Contains(got[0], "Subject: "+subject+"\r\n") {
					t.Fatalf("accepted %q, stored %q", lines, got)
				}
			default:
				t.Fatalf("reply %q", lines)
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
		C: EHLO client.far.example
		S: 250
		H: Hello client.far.example
		C: RCPT TO:<alice@local.example>
		S: 502 5.5.1`)
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
	st.auth.Throttle = auth.NewThrottle(auth.ThrottleConfig{NetworkLimit: 2})
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
	busy.run(`
		R: "second half.\r\n.\r\n"
		S: 250 2.0.0
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

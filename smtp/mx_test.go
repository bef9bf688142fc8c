package smtp

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

const testMessage = "From: sender@far.example\r\nTo: alice@local.example\r\nSubject: hello\r\n\r\nHi there.\r\n"

// send is the script of one transaction to rcpts.
func send(from string, rcpts ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "C: MAIL FROM:<%s>\nS: 250\n", from)
	for _, r := range rcpts {
		fmt.Fprintf(&b, "C: RCPT TO:<%s>\nS: 250\n", r)
	}
	b.WriteString("C: DATA\nS: 354\n")
	fmt.Fprintf(&b, "R: %q\nS: 250 2.0.0\n", testMessage+".\r\n")
	return b.String()
}

func TestMXDelivers(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	c := dial(t, "tcp", addr)
	c.run(`
		S: 220 mx.test ESMTP
		C: EHLO client.far.example
		S: 250
		N: AUTH
		H: SIZE 52428800
	` + send("sender@far.example", "alice@local.example", "team@local.example", "both@local.example") + `
		C: QUIT
		S: 221`)
	for _, u := range []string{"alice@local.example", "bob@local.example"} {
		msgs := st.messages(u, "")
		if len(msgs) != 1 {
			t.Fatalf("%s has %d messages, want exactly one copy", u, len(msgs))
		}
		m := msgs[0]
		for _, want := range []string{
			"Return-Path: <sender@far.example>\r\nDelivered-To: " + u + "\r\nReceived: from client.far.example ([127.0.0.1])\r\n\tby mx.test (mailagent) with ESMTP id ",
			"\r\n" + testMessage,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("%s: message lacks %q:\n%s", u, want, m)
			}
		}
		if strings.Contains(m, "\tfor <") {
			t.Errorf("Received names a recipient of a multi-recipient message:\n%s", m)
		}
	}
	if q := st.queue.All(); len(q) != 0 {
		t.Errorf("queued %d messages, want none", len(q))
	}
}

func TestMXRecipientPolicy(t *testing.T) {
	st := newTestStack(t)
	ctx := context.Background()
	if err := st.db.SetTransport(ctx, "gone.example", "error:this domain has moved"); err != nil {
		t.Fatal(err)
	}
	addr, _ := st.serve(st.options(MX))
	for _, tc := range []struct{ rcpt, want string }{
		{"nobody@local.example", "550 5.1.1"},
		{"alice@far.example", "554 5.7.1"},
		{"alice+tag@local.example", "250"},
		{"ALICE@Local.Example", "250"},
		{"x@gone.example", "550 5.0.0 this domain has moved"},
		// Relay tricks: never relayed, whatever the form.
		{"alice%far.example@local.example", "553 5.1.3"},
		{"far.example!alice@local.example", "553 5.1.3"},
		{"alice@far.example@local.example", "553 5.1.3"},
		{"alice@local.example@far.example", "553 5.1.3"},
		{`"alice@far.example"@local.example`, "553 5.1.3"},
		{`"alice%far.example"@local.example`, "553 5.1.3"},
		{`"far.example!alice"@local.example`, "553 5.1.3"},
		// Source routes, refused as Postfix's strict envelope syntax
		// refuses an address, whatever the rest of the path.
		{"@local.example:alice@far.example", "501 5.1.3"},
		{"@far.example:alice@local.example", "501 5.1.3"},
		{"@far.example,@local.example:alice@local.example", "501 5.1.3"},
		{"@far.example,@local.example:alice%far.example@local.example", "501 5.1.3"},
		{"@[127.0.0.1]:alice@local.example", "501 5.1.3"},
		{"alice@[127.0.0.1]", "554 5.7.1"},
	} {
		t.Run(tc.rcpt, func(t *testing.T) {
			c := dial(t, "tcp", addr)
			c.run(`
				S: 220
				C: EHLO client.far.example
				S: 250
				C: MAIL FROM:<sender@far.example>
				S: 250
				C: RCPT TO:<` + tc.rcpt + `>
				S: ` + tc.want)
		})
	}
	if q := st.queue.All(); len(q) != 0 {
		t.Errorf("queued %d messages, want none", len(q))
	}
}

// TestSourceRoutes sends each source-route form in MAIL and in RCPT
// (with and without brackets): each is refused, and the transaction
// goes on with plain paths.
func TestSourceRoutes(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	for _, path := range []string{
		"<@far.example:sender@far.example>",
		"<@a.example,@b.example:sender@far.example>",
		"<@local.example:alice@local.example>",
		"<@[192.0.2.1]:sender@far.example>",
		"@far.example:sender@far.example",
		"<@far.example:sender@far.example> SIZE=100",
	} {
		t.Run(path, func(t *testing.T) {
			dial(t, "tcp", addr).run(greet + `
				C: MAIL FROM:` + path + `
				S: 501 5.1.7
				C: MAIL FROM:<sender@far.example>
				S: 250
				C: RCPT TO:` + strings.Replace(strings.TrimSuffix(path, " SIZE=100"), "sender@far.example", "alice@local.example", 1) + `
				S: 501 5.1.3
				C: RCPT TO:<alice@local.example>
				S: 250
				C: DATA
				S: 354
				R: ` + fmt.Sprintf("%q", testMessage+".\r\n") + `
				S: 250
				C: QUIT
				S: 221`)
		})
	}
	got := st.messages("alice@local.example", "")
	if len(got) != 6 {
		t.Fatalf("alice has %d messages, want 6", len(got))
	}
	if q := st.queue.All(); len(q) != 0 {
		t.Errorf("queued %d messages, want none", len(q))
	}
}

// TestPipelining sends a transaction in two writes (RFC 2920): the
// replies come in order, the source-routed recipient alone is refused,
// and QUIT sent with the end of data is answered after it.
func TestPipelining(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	dial(t, "tcp", addr).run(greet + fmt.Sprintf(`
		R: %q
		S: 250
		S: 250
		S: 501 5.1.3
		S: 250
		S: 354
		R: %q
		S: 250 2.0.0
		S: 221
		CLOSED`,
		"MAIL FROM:<sender@far.example>\r\nRCPT TO:<alice@local.example>\r\nRCPT TO:<@far.example:bob@local.example>\r\nRCPT TO:<team@local.example>\r\nDATA\r\n",
		testMessage+".\r\nQUIT\r\n"))
	if n := len(st.messages("alice@local.example", "")); n != 1 {
		t.Errorf("alice has %d messages, want 1", n)
	}
	if n := len(st.messages("bob@local.example", "")); n != 1 {
		t.Errorf("bob has %d messages, want 1 (through team)", n)
	}
}

// TestPostmaster sends to a bare "postmaster" (RFC 5321 section 4.5.1),
// in both cases, through the MX and LMTP: it is postmaster@ the
// configured domain, routed like any recipient (here a forwarding to
// alice).
func TestPostmaster(t *testing.T) {
	st := newTestStack(t)
	if err := st.db.AddForwarding(context.Background(), "postmaster@local.example", []string{"alice@local.example"}); err != nil {
		t.Fatal(err)
	}
	o := st.options(MX)
	o.PostmasterDomain = "local.example"
	mx, _ := st.serve(o)
	o = st.options(LMTP)
	o.PostmasterDomain = "local.example"
	lmtp, _ := st.serve(o)
	for i, rcpt := range []string{"<postmaster>", "<Postmaster>", " <POSTMASTER>"} {
		msg := fmt.Sprintf("Subject: to the postmaster %d\r\n\r\nHello.\r\n", i)
		dial(t, "tcp", mx).run(greet + `
			C: MAIL FROM:<sender@far.example>
			S: 250
			C: RCPT TO:` + rcpt + `
			S: 250
			H: postmaster@local.example
			C: DATA
			S: 354
			R: ` + fmt.Sprintf("%q", msg+".\r\n") + `
			S: 250
			C: QUIT
			S: 221`)
	}
	dial(t, "tcp", lmtp).run(`
		S: 220
		C: LHLO postfix.local
		S: 250
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<postmaster>
		S: 250
		C: DATA
		S: 354
		R: "Subject: over LMTP\r\n\r\nHello.\r\n.\r\n"
		S: 250 2.0.0 <postmaster@local.example>
		C: QUIT
		S: 221`)
	got := st.messages("alice@local.example", "")
	if len(got) != 4 {
		t.Fatalf("alice has %d messages, want 4", len(got))
	}
	for i, m := range got {
		if !strings.Contains(m, "Delivered-To: alice@local.example\r\n") || !strings.HasSuffix(m, "\r\n\r\nHello.\r\n") {
			t.Errorf("message %d:\n%s", i, m)
		}
	}
	// Without PostmasterDomain the server's own name is the domain;
	// mx.test is not local here.
	plain, _ := st.serve(st.options(MX))
	dial(t, "tcp", plain).run(greet + `
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<postmaster>
		S: 554 5.7.1`)
}

func TestMXRelaysForwardingsToQueue(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	c := dial(t, "tcp", addr)
	c.run("S: 220\nC: EHLO client.far.example\nS: 250\n" + send("sender@far.example", "out@local.example"))
	q := st.queue.All()
	if len(q) != 1 || len(q[0].Rcpts) != 1 || q[0].Rcpts[0] != "someone@far.example" || q[0].From != "sender@far.example" {
		t.Fatalf("queue got %+v, want one message to someone@far.example", q)
	}
	if strings.Contains(q[0].Data, "Delivered-To") || !strings.HasPrefix(q[0].Data, "Received: ") {
		t.Errorf("queued copy has the wrong header fields:\n%s", q[0].Data)
	}
	if n := len(st.messages("alice@local.example", "")); n != 1 {
		t.Errorf("alice has %d messages, want 1 (kept copy)", n)
	}
}

func TestMXNoAuth(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	c := dial(t, "tcp", addr)
	c.run(`
		S: 220
		C: EHLO client.far.example
		S: 250
		C: STARTTLS
		S: 220
		TLS
		C: EHLO client.far.example
		S: 250
		N: AUTH
		C: AUTH PLAIN AGFsaWNlQGxvY2FsLmV4YW1wbGUAY29ycmVjdCBob3JzZSBiYXR0ZXJ5
		S: 502 5.5.1`)
}

func TestMXTooManyHops(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	hops := strings.Repeat("Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n", 51)
	c := dial(t, "tcp", addr)
	c.run(fmt.Sprintf(`
		S: 220
		C: EHLO client.far.example
		S: 250
		`+toAlice+`
		R: %q
		S: 554 5.4.6
		`+toAlice+`
		R: %q
		S: 250`, hops+testMessage+".\r\n", hops[:50*len(hops)/51]+testMessage+".\r\n"))
	if n := len(st.messages("alice@local.example", "")); n != 1 {
		t.Errorf("alice has %d messages, want 1 (the one with 50 hops)", n)
	}
}

func TestNestedMail(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(MX))
	dial(t, "tcp", addr).run(greet + `
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: MAIL FROM:<other@far.example>
		S: 503 5.5.1
		C: RSET
		S: 250
		C: MAIL FROM:<other@far.example>
		S: 250`)
}

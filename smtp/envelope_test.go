package smtp

import (
	"context"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badBytes are the characters no envelope address or HELO name may
// carry: the C0 controls that can arrive inside a command line (LF ends
// it), DEL, and a C1 control in UTF-8.
var badBytes = []string{"\r", "\x00", "\x01", "\x1b", "\t", "\x7f", "\u0085"}

// TestEnvelopeAddressControls sends each control character inside a
// MAIL and a RCPT address, quoted and not, to the MX and to LMTP: each
// is refused with the sender or recipient syntax code, the address is
// not echoed, and nothing is stored.
func TestEnvelopeAddressControls(t *testing.T) {
	st := newTestStack(t)
	mx, _ := st.serve(st.options(MX))
	lmtp, _ := st.serve(st.options(LMTP))
	for _, srv := range []struct{ name, addr, hello string }{{"mx", mx, "EHLO"}, {"lmtp", lmtp, "LHLO"}} {
		c := dial(t, "tcp", srv.addr)
		c.run("S: 220\nC: " + srv.hello + " client.example\nS: 250")
		for _, b := range badBytes {
			for _, local := range []string{`"x` + b + `X-Inj: 1"`, "x" + b + "y"} {
				from := fmt.Sprintf("%q", "MAIL FROM:<"+local+"@r.example>\r\n")
				to := fmt.Sprintf("%q", "RCPT TO:<"+local+"@local.example>\r\n")
				c.run(`
					R: ` + from + `
					S: 501 5.1.7
					N: X-Inj
					C: MAIL FROM:<sender@far.example>
					S: 250
					R: ` + to + `
					S: 553 5.1.3
					N: X-Inj
					C: RSET
					S: 250`)
			}
		}
		// The domain is checked the same way.
		c.run(`
			R: "MAIL FROM:<a@r\x01.example>\r\n"
			S: 501 5.1.7
			C: MAIL FROM:<a@r(x).example>
			S: 501 5.1.7
			C: MAIL FROM:<sender@far.example>
			S: 250
			R: "RCPT TO:<alice@local\x00.example>\r\n"
			S: 553 5.1.3
			# VRFY and EXPN are not offered: nothing is looked up or echoed.
			R: "VRFY alice\x00X-Inj@local.example\r\n"
			S: 252
			N: X-Inj
			R: "EXPN team\rX-Inj@local.example\r\n"
			S: 502
			N: X-Inj
			C: QUIT
			S: 221`)
	}
	if got := st.messages("alice@local.example", ""); len(got) != 0 {
		t.Fatalf("alice has %d messages, want none", len(got))
	}
}

// TestEnvelopeAddressSizes checks the limits of RFC 5321 section
// 4.5.3.1: a local part of 64 octets, a domain of 255 and a path of 256
// are taken, one more octet is not.
func TestEnvelopeAddressSizes(t *testing.T) {
	st := newTestStack(t)
	mx, _ := st.serve(st.options(MX))
	label := strings.Repeat("d", 63)
	domain255 := label + "." + label + "." + label + "." + strings.Repeat("d", 61) // 255 octets
	local64 := strings.Repeat("l", 64)
	c := dial(t, "tcp", mx)
	c.run(`
		S: 220
		C: EHLO client.example
		S: 250
		C: MAIL FROM:<` + local64 + `@far.example>
		S: 250
		C: RSET
		S: 250
		C: MAIL FROM:<l` + local64 + `@far.example>
		S: 501 5.1.7
		C: MAIL FROM:<a@` + domain255 + `>
		S: 501 5.1.7
		C: MAIL FROM:<a@` + domain255[:250] + `>
		S: 250
		C: RSET
		S: 250
		C: MAIL FROM:<a@x` + domain255 + `>
		S: 501 5.1.7
		C: MAIL FROM:<a@` + strings.Repeat("d", 64) + `.example>
		S: 501 5.1.7
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<l` + local64 + `@local.example>
		S: 553 5.1.3
		C: QUIT
		S: 221`)
	// 64 + 1 + 189 + 2 = 256 octets of path: taken; quoting counts.
	path256 := local64 + "@" + domain255[:189]
	c = dial(t, "tcp", mx)
	c.run(`
		S: 220
		C: EHLO client.example
		S: 250
		C: MAIL FROM:<` + path256 + `>
		S: 250
		C: RSET
		S: 250
		C: MAIL FROM:<` + path256 + `d>
		S: 501 5.1.7
		C: MAIL FROM:<"a b` + local64[4:] + `"@far.example>
		S: 501 5.1.7
		C: QUIT
		S: 221`)
}

// TestEnvelopeNonASCII: a UTF-8 address needs SMTPUTF8 on MAIL (553
// 5.6.7, RFC 6531 section 3.5), at MAIL and at RCPT; invalid UTF-8 is
// bad syntax whatever the parameters.
func TestEnvelopeNonASCII(t *testing.T) {
	st := newTestStack(t)
	mx, _ := st.serve(st.options(MX))
	c := dial(t, "tcp", mx)
	c.run(`
		S: 220
		C: EHLO client.example
		S: 250
		H: SMTPUTF8
		C: MAIL FROM:<jörg@far.example>
		S: 553 5.6.7
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<jörg@local.example>
		S: 553 5.6.7
		C: RCPT TO:<alice@bücher.example>
		S: 553 5.6.7
		C: RSET
		S: 250
		R: "MAIL FROM:<j\xf6rg@far.example> SMTPUTF8\r\n"
		S: 501 5.1.7
		C: MAIL FROM:<jörg@far.example> SMTPUTF8
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: QUIT
		S: 221`)
}

// TestHeloControls: a HELO, EHLO or LHLO argument with a control
// character or longer than a domain is refused with 501 5.5.2 and not
// echoed; the session goes on and a good EHLO is answered.
func TestHeloControls(t *testing.T) {
	st := newTestStack(t)
	mx, _ := st.serve(st.options(MX))
	lmtp, _ := st.serve(st.options(LMTP))
	for _, srv := range []struct{ addr, verbs string }{{mx, "HELO EHLO"}, {lmtp, "LHLO"}} {
		c := dial(t, "tcp", srv.addr)
		c.run("S: 220")
		for _, verb := range strings.Fields(srv.verbs) {
			for _, b := range badBytes {
				c.run(`
					R: ` + fmt.Sprintf("%q", verb+" evil"+b+"X-Inj\r\n") + `
					S: 501 5.5.2
					N: X-Inj`)
			}
			c.run(`
				C: ` + verb + ` ` + strings.Repeat("h", 256) + `
				S: 501 5.5.2
				C: MAIL FROM:<sender@far.example>
				S: 5`)
		}
		c.run(`
			C: ` + strings.Fields(srv.verbs)[len(strings.Fields(srv.verbs))-1] + ` client.example
			S: 250
			C: MAIL FROM:<sender@far.example>
			S: 250
			C: QUIT
			S: 221`)
	}
}

// TestAuthzidControls: a SASL PLAIN authorization identity with a
// control character is refused as bad syntax before any password check.
func TestAuthzidControls(t *testing.T) {
	st := newTestStack(t)
	addr, _ := st.serve(st.options(Submission))
	c := dial(t, "tcp", addr)
	bad := b64("alice@local.example\r\nX-Inj: 1\x00alice@local.example\x00" + testPassword)
	c.run(tlsHello + `
		C: AUTH PLAIN ` + bad + `
		S: 501 5.1.7
		C: AUTH PLAIN ` + plainIR("alice@local.example", testPassword) + `
		S: 235`)
}

// TestReturnPathQuoted: an address whose local part needs quoting is
// written quoted into Return-Path and Received, and a mail parser reads
// back the address the client sent.
func TestReturnPathQuoted(t *testing.T) {
	st := newTestStack(t)
	mx, _ := st.serve(st.options(MX))
	c := dial(t, "tcp", mx)
	c.run(`
		S: 220
		C: EHLO client.example
		S: 250
		C: MAIL FROM:<"odd \"one\"\\ (x)"@far.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: DATA
		S: 354
		R: "Subject: hi\r\n\r\nbody\r\n.\r\n"
		S: 250
		C: QUIT
		S: 221`)
	got := st.messages("alice@local.example", "")
	if len(got) != 1 {
		t.Fatalf("alice has %d messages, want 1", len(got))
	}
	m, err := mail.ReadMessage(strings.NewReader(got[0]))
	if err != nil {
		t.Fatal(err)
	}
	a, err := mail.ParseAddress(m.Header.Get("Return-Path"))
	if err != nil {
		t.Fatalf("Return-Path %q: %v", m.Header.Get("Return-Path"), err)
	}
	if want := `odd "one"\ (x)@far.example`; a.Address != want {
		t.Fatalf("Return-Path address %q, want %q", a.Address, want)
	}
	var names []string
	for k := range m.Header {
		names = append(names, k)
	}
	if len(m.Header) != 4 {
		t.Fatalf("header fields %q, want Return-Path, Delivered-To, Received, Subject", names)
	}
}

// quoteLocal writes a local part as a quoted-string of RFC 5321, for the
// fuzz dialog.
func quoteLocal(l string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(l) + `"`
}

// FuzzEnvelopeHeaders sends one message to the MX or to LMTP with a
// fuzzed HELO name, sender (local part quoted or not, SMTPUTF8 or not)
// and recipient subaddress. Whenever the server accepts the message,
// the stored copy must parse (net/mail) into exactly the header fields
// the server writes, Return-Path, Delivered-To and Received, in front of
// the message's own Subject, and the Return-Path must read back as the
// sender the client gave.
func FuzzEnvelopeHeaders(f *testing.F) {
	f.Add(false, "client.example", "sender", "far.example", false, false, "tag")
	f.Add(false, "client.example", "x\rX-Inj: 1", "r.example", true, false, "")
	f.Add(true, "[192.0.2.1]", "odd \"one\" (x)", "far.example", true, false, "a b")
	f.Add(false, "evil\x00X: y", "a", "b\x01.example", false, false, "t\x7f")
	f.Add(false, "bücher.example", "jörg", "bücher.example", false, true, "ü")
	f.Add(true, "h(e)lo", "a..b", "[IPv6:2001:db8::1]", true, false, "\"")
	st := newTestStack(f)
	mx, _ := st.serve(st.options(MX))
	lm, _ := st.serve(st.options(LMTP))
	u, err := st.db.LookupUser(context.Background(), "alice@local.example")
	if err != nil {
		f.Fatal(err)
	}
	inbox := filepath.Join(st.dir, "mail", u.Maildir, "new")
	f.Fuzz(func(t *testing.T, lmtp bool, helo, local, domain string, quote, smtputf8 bool, tag string) {
		addr, hello := mx, "EHLO"
		if lmtp {
			addr, hello = lm, "LHLO"
		}
		if strings.ContainsAny(helo+local+domain+tag, "\n") {
			return // a line break ends the command: another dialog
		}
		lp := local
		if quote {
			lp = quoteLocal(local)
		}
		params := ""
		if smtputf8 {
			params = " SMTPUTF8"
		}
		rcpt := "alice+" + tag + "@local.example"
		c := dial(t, "tcp", addr)
		defer c.conn.Close()
		step := func(line string) string {
			c.send(line + "\r\n")
			lines, err := c.reply()
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			return lines[len(lines)-1]
		}
		if r, _ := c.reply(); !strings.HasPrefix(r[0], "220") {
			t.Fatalf("greeting %q", r)
		}
		if !strings.HasPrefix(step(hello+" "+helo), "250") ||
			!strings.HasPrefix(step("MAIL FROM:<"+lp+"@"+domain+">"+params), "250") ||
			!strings.HasPrefix(step("RCPT TO:<"+rcpt+">"), "250") ||
			!strings.HasPrefix(step("DATA"), "354") {
			return
		}
		if r := step("Subject: fuzz\r\n\r\nbody\r\n."); !strings.HasPrefix(r, "250") {
			t.Fatalf("DATA refused: %q", r)
		}
		ents, err := os.ReadDir(inbox)
		if err != nil || len(ents) != 1 {
			t.Fatalf("inbox holds %d messages (%v), want 1", len(ents), err)
		}
		name := filepath.Join(inbox, ents[0].Name())
		raw, err := os.ReadFile(name)
		os.Remove(name)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatalf("stored message does not parse: %v\n%q", err, raw)
		}
		want := map[string]int{"Return-Path": 1, "Delivered-To": 1, "Received": 1, "Subject": 1}
		for k, v := range m.Header {
			if want[k] != len(v) {
				t.Fatalf("stored header has %d %q fields, want %d:\n%q", len(v), k, want[k], raw)
			}
		}
		if len(m.Header) != len(want) || m.Header.Get("Subject") != "fuzz" {
			t.Fatalf("stored header %v:\n%q", m.Header, raw)
		}
		rp := m.Header.Get("Return-Path")
		a, err := mail.ParseAddress(rp)
		switch {
		case err == nil && a.Address != local+"@"+domain:
			t.Fatalf("Return-Path %q reads as %q, want %q", rp, a.Address, local+"@"+domain)
		case err != nil && isASCIIString(local) && !strings.HasPrefix(domain, "["):
			// net/mail reads ASCII addresses and IP literals only.
			t.Fatalf("Return-Path %q: %v", rp, err)
		}
		if !strings.HasPrefix(m.Header.Get("Received"), "from ") {
			t.Fatalf("Received %q", m.Header.Get("Received"))
		}
	})
}

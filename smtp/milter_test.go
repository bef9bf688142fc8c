package smtp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	milter "github.com/d--j/go-milter"
	"github.com/mailagent/mailagent/smtp/internal/smtptest"
	"github.com/mailagent/mailagent/smtp/mail"
	"github.com/mailagent/mailagent/store"
)

// scriptMilter is a milter written with go-milter's server: it acts on
// the message by its Subject, and records what it saw.
type scriptMilter struct {
	milter.NoOpMilter
	rec     *milterRecord
	subject string
	headers []string
	body    bytes.Buffer
}

type milterRecord struct {
	mu      sync.Mutex
	macros  map[string]string
	headers []string
	body    string
	hang    chan struct{}
	// conns counts the milter connections (connect commands), mails
	// the transactions.
	conns, mails int
}

func (r *milterRecord) macro(m milter.Modifier, names ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		if v := m.Get(n); v != "" {
			r.macros[n] = v
		}
	}
}

func (s *scriptMilter) Connect(host, family string, port uint16, addr string, m milter.Modifier) (*milter.Response, error) {
	s.rec.macro(m, "j", "{daemon_name}", "{client_addr}", "{client_port}")
	s.rec.mu.Lock()
	s.rec.conns++
	s.rec.mu.Unlock()
	return milter.RespContinue, nil
}

func (s *scriptMilter) MailFrom(from, args string, m milter.Modifier) (*milter.Response, error) {
	// A new transaction on the connection: forget the last message.
	s.subject, s.headers = "", nil
	s.body.Reset()
	s.rec.macro(m, "{mail_addr}", "i", "{auth_type}", "{auth_authen}")
	s.rec.mu.Lock()
	s.rec.mails++
	s.rec.mu.Unlock()
	if from == "blocked@far.example" {
		return milter.RejectWithCodeAndReason(550, "5.7.1 sender blocked by milter")
	}
	return milter.RespContinue, nil
}

func (s *scriptMilter) RcptTo(rcpt, args string, m milter.Modifier) (*milter.Response, error) {
	s.rec.macro(m, "{rcpt_addr}")
	if rcpt == "carol@other.example" {
		return milter.RejectWithCodeAndReason(550, "5.1.1 no carol here")
	}
	return milter.RespContinue, nil
}

func (s *scriptMilter) Header(name, value string, m milter.Modifier) (*milter.Response, error) {
	s.headers = append(s.headers, name)
	if strings.EqualFold(name, "Subject") {
		s.subject = value
	}
	return milter.RespContinue, nil
}

func (s *scriptMilter) BodyChunk(chunk []byte, m milter.Modifier) (*milter.Response, error) {
	s.body.Write(chunk)
	return milter.RespContinue, nil
}

func (s *scriptMilter) EndOfMessage(m milter.Modifier) (*milter.Response, error) {
	s.rec.mu.Lock()
	s.rec.headers, s.rec.body = s.headers, s.body.String()
	s.rec.mu.Unlock()
	s.rec.macro(m, "i")
	switch s.subject {
	case "gtube":
		return milter.RejectWithCodeAndReason(554, "5.7.1 Gtube pattern")
	case "tempfail":
		return milter.RespTempFail, nil
	case "discard":
		return milter.RespDiscard, nil
	case "spam":
		_ = m.AddHeader("X-Spam-Flag", "YES")
	case "edit":
		_ = m.AddHeader("X-Spam-Status", "No, score=1.5\n\ttests=NONE")
		_ = m.InsertHeader(0, "X-First", "inserted")
		_ = m.ChangeHeader(1, "Subject", "edited")
		_ = m.ChangeHeader(1, "X-Remove", "")
		_ = m.ChangeHeader(1, "X-Absent", "added by change")
		_ = m.ReplaceBody(strings.NewReader("new body\r\n"))
	case "reroute":
		_ = m.DeleteRecipient("<alice@local.example>")
		_ = m.AddRecipient("<bob@local.example>", "")
		_ = m.ChangeFrom("<changed@far.example>", "")
	case "quarantine":
		_ = m.Quarantine("held for review")
	case "hang":
		<-s.rec.hang
	}
	return milter.RespAccept, nil
}

// startMilter serves scriptMilter on loopback.
func startMilter(t testing.TB) (string, *milterRecord) {
	t.Helper()
	rec := &milterRecord{macros: map[string]string{}, hang: make(chan struct{})}
	srv := milter.NewServer(milter.WithMilter(func() milter.Milter { return &scriptMilter{rec: rec} }),
		milter.WithActions(milter.AllClientSupportedActionMasks))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		close(rec.hang)
		srv.Close()
	})
	return "inet:" + l.Addr().String(), rec
}

func message(subject, extra string) string {
	return fmt.Sprintf("%q", "Subject: "+subject+"\r\n"+extra+"\r\nbody\r\n.\r\n")
}

func TestMilterActions(t *testing.T) {
	st := newTestStack(t)
	maddr, rec := startMilter(t)
	o := st.options(MX)
	o.Checks.Filters = []mail.Filter{&Milter{Address: maddr}}
	addr, _ := st.serve(o)
	dial(t, "tcp", addr).run(greet + `
		C: MAIL FROM:<blocked@far.example>
		S: 550 5.7.1 sender blocked by milter
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<carol@other.example>
		S: 550 5.1.1 no carol here
		C: RCPT TO:<alice@local.example>
		S: 250
		C: DATA
		S: 354
		R: ` + message("gtube", "") + `
		S: 554 5.7.1 Gtube pattern
		` + toAlice + `
		R: ` + message("tempfail", "") + `
		S: 451 4.7.1
		` + toAlice + `
		R: ` + message("discard", "") + `
		S: 250 2.0.0 OK: queued as 
		` + toAlice + `
		R: ` + message("spam", "") + `
		S: 250
		` + toAlice + `
		R: ` + message("quarantine", "") + `
		S: 250
		` + toAlice + `
		R: ` + message("edit", "X-Remove: me\r\nX-Keep: me\r\n") + `
		S: 250
		` + toAlice + `
		R: ` + message("reroute", "") + `
		S: 250`)

	inbox := st.messages("alice@local.example", "")
	if len(inbox) != 1 {
		t.Fatalf("alice's INBOX has %d messages, want 1 (the edited one)", len(inbox))
	}
	m := inbox[0]
	if !strings.Contains(m, "\r\nX-First: inserted\r\nReceived: ") {
		t.Errorf("inserted field not first:\n%s", m)
	}
	for _, want := range []string{"\r\nSubject: edited\r\n", "\r\nX-Keep: me\r\nX-Spam-Status: No, score=1.5\r\n\ttests=NONE\r\nX-Absent: added by change\r\n\r\nnew body\r\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("edited message lacks %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, "X-Remove") || strings.Contains(m, "Subject: edit\r\n") || strings.Contains(m, "\r\nbody\r\n") {
		t.Errorf("edited message keeps what the milter removed:\n%s", m)
	}
	junk := st.messages("alice@local.example", "Junk")
	if len(junk) != 2 || !strings.Contains(junk[0]+junk[1], "X-Spam-Flag: YES\r\n") || !strings.Contains(junk[0]+junk[1], "Subject: quarantine\r\n") {
		t.Errorf("Junk has %d messages, want the spam and the quarantined one:\n%s", len(junk), strings.Join(junk, "\n---\n"))
	}
	bob := st.messages("bob@local.example", "")
	if len(bob) != 1 || !strings.Contains(bob[0], "Subject: reroute") {
		t.Fatalf("bob's INBOX: %q, want the rerouted message", bob)
	}
	if !strings.HasPrefix(bob[0], "Return-Path: <changed@far.example>\r\n") {
		t.Errorf("bob's copy lacks the sender the milter set:\n%s", bob[0])
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for name, want := range map[string]string{"j": "mx.test", "{daemon_name}": "mailagent", "{client_addr}": "127.0.0.1",
		"{mail_addr}": "sender@far.example", "{rcpt_addr}": "alice@local.example"} {
		if got := rec.macros[name]; got != want {
			t.Errorf("macro %s = %q, want %q", name, got, want)
		}
	}
	if rec.macros["i"] == "" {
		t.Errorf("macro i (queue ID) not sent")
	}
	// The milter sees the message with this server's fields in front.
	if len(rec.headers) < 2 || rec.headers[0] != "Received" {
		t.Errorf("milter saw header fields %q, want Received first", rec.headers)
	}
}

// TestMilterEnvelopeEdits checks the sender and recipients a milter
// changes on the Target's envelope.
func TestMilterEnvelopeEdits(t *testing.T) {
	st := newTestStack(t)
	maddr, _ := startMilter(t)
	rt := &smtptest.Recorder{}
	o := st.options(MX)
	o.Target = rt
	o.Checks.Filters = []mail.Filter{&Milter{Address: maddr}}
	addr, _ := st.serve(o)
	dial(t, "tcp", addr).run(greet + toAlice + `
		R: ` + message("reroute", "") + `
		S: 250`)
	got := rt.All()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	if got[0].From != "changed@far.example" || strings.Join(got[0].Rcpts, ",") != "bob@local.example" {
		t.Errorf("delivered from %q to %q, want changed@far.example to bob@local.example", got[0].From, got[0].Rcpts)
	}
}

// TestMilterDown: a milter that is not listening gets the default
// action, tempfail unless set to accept.
func TestMilterDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "inet:" + l.Addr().String()
	l.Close()
	st := newTestStack(t)
	o := st.options(MX)
	o.Checks.Filters = []mail.Filter{&Milter{Address: down}}
	addr, _ := st.serve(o)
	dial(t, "tcp", addr).run(greet + `
		C: MAIL FROM:<sender@far.example>
		S: 451 4.7.1 Service unavailable - try again later`)

	o = st.options(MX)
	o.Checks.Filters = []mail.Filter{&Milter{Address: down, Failure: MilterAccept}}
	addr, _ = st.serve(o)
	dial(t, "tcp", addr).run(greet + toAlice + `
		R: ` + message("hello", "") + `
		S: 250`)
	if n := len(st.messages("alice@local.example", "")); n != 1 {
		t.Errorf("with milter_default_action=accept: %d messages delivered, want 1", n)
	}
}

// TestMilterTimeout: a milter that does not answer end-of-message within
// the content timeout gets the default action.
func TestMilterTimeout(t *testing.T) {
	st := newTestStack(t)
	maddr, _ := startMilter(t)
	o := st.options(MX)
	o.Checks.Filters = []mail.Filter{&Milter{Address: maddr, ContentTimeout: 200 * time.Millisecond}}
	addr, _ := st.serve(o)
	start := time.Now()
	dial(t, "tcp", addr).run(greet + toAlice + `
		R: ` + message("hang", "") + `
		S: 451 4.7.1`)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("timeout took %v", d)
	}
	if n := len(st.messages("alice@local.example", "")); n != 0 {
		t.Errorf("%d messages delivered after a milter timeout, want 0", n)
	}
}

// TestMilterSubmissionSignsLast: on submission the signature is made
// after the milter's edits, so it covers them.
func TestMilterSubmissionSignsLast(t *testing.T) {
	maddr, _ := startMilter(t)
	var signed string
	sig := signerFunc(func(ctx context.Context, env *mail.Envelope, msg mail.Body) ([]string, error) {
		r, _ := msg.Open()
		defer r.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(r)
		signed = b.String()
		return []string{"X-Signed: yes"}, nil
	})
	msg := mail.BytesBody([]byte("Subject: edit\r\n\r\nbody\r\n"))
	ss := &session{srv: &Server{opts: Options{Role: Submission, Signer: sig}}, env: &mail.Envelope{ID: "t1"}}
	ss.log = slog.New(slog.DiscardHandler)
	ss.ctx = context.Background()
	fs, v := (&Milter{Address: maddr}).Open(ss.ctx, &mail.Envelope{ID: "t1", From: "a@local.example", Helo: "h"})
	if v.Action != mail.Accept || fs == nil {
		t.Fatalf("Open: %+v", v)
	}
	if v := fs.Rcpt(ss.ctx, ss.env, "b@far.example"); v.Action != mail.Accept {
		t.Fatalf("Rcpt: %+v", v)
	}
	ss.filters = []mail.FilterSession{fs}
	defer ss.closeFilters()
	out, err := ss.runFilters(msg)
	if err == nil {
		err = ss.sign(&out)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(signed, "Subject: edited\r\n") || !strings.Contains(signed, "new body") {
		t.Errorf("signer saw the message before the milter's edits:\n%s", signed)
	}
	r, _ := out.Open()
	first, _ := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if first != "X-Signed: yes\r\n" {
		t.Errorf("signature field not first: %q", first)
	}
}

type signerFunc func(ctx context.Context, env *mail.Envelope, msg mail.Body) ([]string, error)

func (f signerFunc) Sign(ctx context.Context, env *mail.Envelope, msg mail.Body) ([]string, error) {
	return f(ctx, env, msg)
}

func TestParseMilterReply(t *testing.T) {
	for _, c := range []struct {
		code uint16
		text string
		want string
	}{
		{554, "554 5.7.1 Gtube pattern", "554 5.7.1 Gtube pattern"},
		{450, "450 4.2.0 busy\r\n450-4.2.0 come back", "450 4.2.0 busy\ncome back"},
		{550, "550 no enhanced code", "550 5.7.1 no enhanced code"},
		{550, "550 4.7.1 wrong class", "550 5.7.1 4.7.1 wrong class"},
		{250, "250 ok", "451 4.7.1 Service unavailable - try again later"},
	} {
		e := parseMilterReply(c.code, c.text)
		got := fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
		if got != c.want {
			t.Errorf("parseMilterReply(%d, %q) = %q, want %q", c.code, c.text, got, c.want)
		}
	}
}

func TestParseMilterAddress(t *testing.T) {
	for in, want := range map[string]string{
		"inet:127.0.0.1:11332": "tcp 127.0.0.1:11332",
		"unix:/run/x.sock":     "unix /run/x.sock",
		"localhost:8891":       "tcp localhost:8891",
		"inet:nohost":          "error",
	} {
		n, a, err := ParseMilterAddress(in)
		got := n + " " + a
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("ParseMilterAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestJunkFolderPerUser: a message a milter marks as spam goes to each
// recipient's junk folder as local.Delivery.JunkFolder names it: the
// default Junk for alice, INBOX for bob (filtering off for him).
func TestJunkFolderPerUser(t *testing.T) {
	st := newTestStack(t)
	st.local.JunkFolder = func(u *store.User) string {
		if u.Address == "bob@local.example" {
			return "INBOX"
		}
		return ""
	}
	maddr, _ := startMilter(t)
	o := st.options(MX)
	o.Checks.Filters = []mail.Filter{&Milter{Address: maddr}}
	addr, _ := st.serve(o)
	dial(t, "tcp", addr).run(greet + `
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: RCPT TO:<bob@local.example>
		S: 250
		C: DATA
		S: 354
		R: ` + message("spam", "") + `
		S: 250`)
	for _, c := range []struct {
		user, folder string
		n            int
	}{{"alice@local.example", "Junk", 1}, {"alice@local.example", "", 0}, {"bob@local.example", "", 1}, {"bob@local.example", "Junk", 0}} {
		got := st.messages(c.user, c.folder)
		if len(got) != c.n {
			t.Errorf("%s folder %q: %d messages, want %d", c.user, c.folder, len(got), c.n)
		}
		for _, m := range got {
			if !strings.Contains(m, "X-Spam-Flag: YES\r\n") {
				t.Errorf("%s's copy lacks the milter's X-Spam-Flag:\n%s", c.user, m)
			}
		}
	}
}

// FuzzParseMilterReply: whatever a milter sends as its reply text, the
// reply is a 4xx or 5xx whose enhanced code has the reply's class, and
// whose text has no control character but the line breaks between its
// lines.
func FuzzParseMilterReply(f *testing.F) {
	f.Add(uint16(554), "554 5.7.1 Gtube pattern")
	f.Add(uint16(450), "450-4.2.0 a\r\n450 4.2.0 b")
	f.Add(uint16(250), "250 ok")
	f.Add(uint16(550), "550 9999.1.1 x")
	f.Fuzz(func(t *testing.T, code uint16, text string) {
		e := parseMilterReply(code, text)
		if e.Code < 400 || e.Code > 599 || e.EnhancedCode[0] != e.Code/100 {
			t.Fatalf("parseMilterReply(%d, %q) = %d %v", code, text, e.Code, e.EnhancedCode)
		}
		if strings.ContainsFunc(e.Message, func(r rune) bool { return r != '\n' && (r < 0x20 || r == 0x7f) }) {
			t.Fatalf("control character left in %q", e.Message)
		}
	})
}

// TestMilterQuarantineTarget: with Options.Quarantine set, a message a
// milter quarantines goes there (held in the queue, in fullserver), not
// to the recipients' folders.
func TestMilterQuarantineTarget(t *testing.T) {
	st := newTestStack(t)
	maddr, _ := startMilter(t)
	held := &smtptest.Recorder{}
	o := st.options(MX)
	o.Quarantine = held
	o.Checks.Filters = []mail.Filter{&Milter{Address: maddr}}
	addr, _ := st.serve(o)
	dial(t, "tcp", addr).run(greet + toAlice + `
		R: ` + message("quarantine", "") + `
		S: 250
		` + toAlice + `
		R: ` + message("hello", "") + `
		S: 250`)
	got := held.All()
	if len(got) != 1 || strings.Join(got[0].Rcpts, ",") != "alice@local.example" || !strings.Contains(got[0].Data, "Subject: quarantine\r\n") {
		t.Fatalf("quarantine target got %+v, want the quarantined message for alice", got)
	}
	if n := len(st.messages("alice@local.example", "Junk")); n != 0 {
		t.Errorf("%d messages in Junk, want none (quarantined ones are held)", n)
	}
	if n := len(st.messages("alice@local.example", "")); n != 1 {
		t.Errorf("%d messages in INBOX, want the other one", n)
	}
}

// TestMilterOneConnectionPerSession: as with Postfix, the milter is
// connected once for the SMTP session, every transaction of the session
// goes over that connection (a refused one included), and {auth_type}
// is the mechanism the client logged in with.
func TestMilterOneConnectionPerSession(t *testing.T) {
	st := newTestStack(t)
	maddr, rec := startMilter(t)
	o := st.options(Submission)
	o.Checks.Filters = []mail.Filter{&Milter{Address: maddr}}
	addr, _ := st.serve(o)
	toBob := `
		C: MAIL FROM:<alice@local.example>
		S: 250
		C: RCPT TO:<bob@local.example>
		S: 250
		C: DATA
		S: 354
		R: `
	dial(t, "tcp", addr).run(tlsHello + `
		C: AUTH LOGIN ` + b64("alice@local.example") + `
		S: 334 ` + b64("Password:") + `
		C: ` + b64(testPassword) + `
		S: 235` + toBob + message("first", "") + `
		S: 250` + toBob + message("gtube", "") + `
		S: 554 5.7.1 Gtube pattern
		C: MAIL FROM:<alice@local.example>
		S: 250
		C: RSET
		S: 250` + toBob + message("second", "") + `
		S: 250
		C: QUIT
		S: 221`)
	got := st.messages("bob@local.example", "")
	if len(got) != 2 || !strings.Contains(got[0]+got[1], "Subject: first\r\n") || !strings.Contains(got[0]+got[1], "Subject: second\r\n") {
		t.Fatalf("bob's INBOX has %d messages, want the first and the second", len(got))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.conns != 1 || rec.mails != 4 {
		t.Errorf("milter saw %d connections and %d transactions, want 1 and 4", rec.conns, rec.mails)
	}
	if rec.macros["{auth_type}"] != "LOGIN" || rec.macros["{auth_authen}"] != "alice@local.example" {
		t.Errorf("{auth_type} %q {auth_authen} %q, want LOGIN and alice@local.example", rec.macros["{auth_type}"], rec.macros["{auth_authen}"])
	}
}

// TestMilterReconnects: when the milter breaks off in the middle of a
// session's transaction, the default action answers that one and the
// next transaction of the same session connects again.
func TestMilterReconnects(t *testing.T) {
	st := newTestStack(t)
	maddr, rec := startMilter(t)
	o := st.options(MX)
	o.Checks.Filters = []mail.Filter{&Milter{Address: maddr, ContentTimeout: 200 * time.Millisecond}}
	addr, _ := st.serve(o)
	dial(t, "tcp", addr).run(greet + toAlice + `
		R: ` + message("hang", "") + `
		S: 451 4.7.1
		` + toAlice + `
		R: ` + message("after", "") + `
		S: 250`)
	if n := len(st.messages("alice@local.example", "")); n != 1 {
		t.Errorf("%d messages delivered, want the one after the timeout", n)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.conns != 2 {
		t.Errorf("milter saw %d connections, want 2 (a new one after the failure)", rec.conns)
	}
}

// TestMilterEnvelopeEditsLMTP: over LMTP a milter's envelope edits are
// applied as over SMTP, and the client still gets one status per
// recipient it gave: 250 for the one the milter removed, its own
// delivery's status for one it kept (small's mailbox is full), none for
// the one it added.
func TestMilterEnvelopeEditsLMTP(t *testing.T) {
	st := newTestStack(t)
	maddr, _ := startMilter(t)
	o := st.options(LMTP)
	o.Checks.Filters = []mail.Filter{&Milter{Address: maddr}}
	addr, _ := st.serve(o)
	dial(t, "tcp", addr).run(`
		S: 220
		C: LHLO postfix.local
		S: 250
		C: MAIL FROM:<sender@far.example>
		S: 250
		C: RCPT TO:<alice@local.example>
		S: 250
		C: RCPT TO:<small@local.example>
		S: 250
		C: DATA
		S: 354
		R: ` + message("reroute", "") + `
		S: 250 2.0.0 <alice@local.example> OK: queued as 
		S: 552 5.2.2 <small@local.example>
		C: QUIT
		S: 221`)
	if n := len(st.messages("alice@local.example", "")); n != 0 {
		t.Errorf("alice, removed by the milter, has %d messages", n)
	}
	got := st.messages("bob@local.example", "")
	if len(got) != 1 || !strings.HasPrefix(got[0], "Return-Path: <changed@far.example>\r\n") {
		t.Errorf("bob got %q, want one copy from the sender the milter set", got)
	}
}

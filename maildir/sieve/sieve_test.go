package sieve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const unitMsg = "From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: Hello\r\nX-Tag: a\r\nX-Tag: b\r\nReceived: from x by y; Mon, 07 Dec 2026 10:00:00 +0000\r\n\r\nbody text\r\n"

func run(t *testing.T, script string, env Envelope, opts Options) (*Result, error) {
	t.Helper()
	s, err := Parse([]byte(script), opts.Limits)
	if err != nil {
		t.Fatalf("parse %q: %v", script, err)
	}
	return Run(context.Background(), s, ParseMessage([]byte(unitMsg)), env, opts)
}

// TestExtensions covers what the Pigeonhole corpus cannot: ereject (not in
// Pigeonhole 2.3), the null sender, mailboxexists, and :detail edge cases.
func TestExtensions(t *testing.T) {
	env := Envelope{From: "alice@example.org", To: "bob+x@example.com"}
	cases := []struct{ name, script, want string }{
		{"ereject", `require "ereject"; ereject "go away";`, "reject go away"},
		{"null sender", `require "envelope"; if envelope :is "from" "" { discard; }`, "discard"},
		{"detail empty", `require ["envelope","subaddress"]; if envelope :detail "to" "" { discard; }`, "implicit store INBOX"},
		{"mailboxexists", `require ["mailbox","fileinto"]; if mailboxexists "Lists" { fileinto "Lists"; } else { fileinto "Other"; }`, "store Lists"},
		{"mailboxexists missing", `require ["mailbox","fileinto"]; if mailboxexists ["Lists", "Nope"] { fileinto "Lists"; }`, "implicit store INBOX"},
		{"numeric infinity", `require ["comparator-i;ascii-numeric"]; if header :is :comparator "i;ascii-numeric" "subject" "x" { discard; }`, "discard"},
		{"multiline", "require \"reject\";\r\nreject text:\r\nline one\r\n..dot\r\n.\r\n;", "reject line one\r\n.dot\r\n"},
		{"escapes", `require "fileinto"; fileinto "a\"b\\c\d";`, `store a"b\cd`},
		{"flags variable", `require ["imap4flags","variables","fileinto"]; addflag "v" "x y"; removeflag "v" "x"; fileinto :flags "${v}" "F";`, "store F flags=y"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := Options{Mailboxes: mailboxes{"Lists": true}}
			if c.name == "null sender" {
				env := env
				env.From = ""
				res, err := run(t, c.script, env, opts)
				if got := canonical(res, err); got != c.want {
					t.Fatalf("got %q, want %q", got, c.want)
				}
				return
			}
			res, err := run(t, c.script, env, opts)
			if got := canonical(res, err); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	res, _ := run(t, `require "ereject"; ereject "x";`, env, Options{})
	if !res.Actions[0].Extended {
		t.Error("ereject is not marked Extended")
	}
}

type mailboxes map[string]bool

func (m mailboxes) Exists(n string) bool { return m[n] }

func TestEditheaderHeader(t *testing.T) {
	res, err := run(t, `require ["editheader","fileinto","copy"]; addheader "X-First" "1"; fileinto :copy "A"; deleteheader "x-tag"; addheader :last "X-Last" "Grüße";`, Envelope{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := res.Actions[0]
	if a.Kind != ActFileInto || a.Header[0] != (Field{"X-First", " 1"}) || len(fieldValues(a.Header, "x-tag")) != 2 {
		t.Fatalf("fileinto's header is not the one at its time: %+v", a.Header)
	}
	h := res.Header
	if h[0].Name != "X-First" || h[len(h)-1].Name != "X-Last" || fieldValues(h, "x-tag") != nil {
		t.Fatalf("final header: %+v", h)
	}
	if v := h[len(h)-1].Value; v != " =?utf-8?q?Gr=C3=BC=C3=9Fe?=" || decodeValue(v) != "Grüße" {
		t.Fatalf("non-ASCII value stored as %q", v)
	}
	if !res.Edited || res.Actions[1].Header == nil {
		t.Fatal("implicit keep does not carry the edited header")
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ script, want string }{
		{"keep", "1:5: expected \";\""},
		{"if true {\n  keep;\n", "missing '}'"},
		{"fileinto \"x\";", "1:1: fileinto requires \"fileinto\""},
		{"require \"nope\";", "unsupported extension"},
		{"keep;\nrequire \"fileinto\";", "2:1: require must come before"},
		{"if header :is :contains \"a\" \"b\" {}", "more than one match"},
		{"redirect :copy \"a@b\";", ":copy requires"},
		{"if header :regex \"a\" \"(\" {}", "requires \"regex\""},
		{"require \"regex\"; if header :regex \"a\" \"(\" {}", "bad regular expression"},
		{"require \"date\"; if date \"date\" \"century\" \"x\" {}", "unknown date part"},
		{"/* open", "unterminated comment"},
		{"\"abc", "unterminated string"},
		{"size :over 1;", "unknown command size"},
		{"if size 1 {}", "size needs :over or :under"},
		{"elsif true {}", "elsif without if"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.script), Limits{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want error with %q", c.script, err, c.want)
		}
	}
}

func TestLimits(t *testing.T) {
	if _, err := Parse([]byte(strings.Repeat("keep;", 100)), Limits{MaxScriptSize: 100}); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("size limit: %v", err)
	}
	deep := strings.Repeat("if true {", 40) + strings.Repeat("}", 40)
	if _, err := Parse([]byte(deep), Limits{}); err == nil || !strings.Contains(err.Error(), "nested too deep") {
		t.Errorf("nesting limit: %v", err)
	}
	deepTest := "if " + strings.Repeat("not ", 40) + "true {}"
	if _, err := Parse([]byte(deepTest), Limits{}); err == nil || !strings.Contains(err.Error(), "nested too deep") {
		t.Errorf("test nesting limit: %v", err)
	}
	var b strings.Builder
	b.WriteString(`require "fileinto";`)
	for i := range 40 {
		fmt.Fprintf(&b, `fileinto "f%d";`, i)
	}
	res, err := run(t, b.String(), Envelope{}, Options{})
	if err == nil || !strings.Contains(err.Error(), "too many actions") {
		t.Fatalf("action limit: %v", err)
	}
	if len(res.Actions) != 1 || !res.Actions[0].Implicit {
		t.Fatalf("a failed run must keep: %+v", res.Actions)
	}
	loop := `require "variables"; set "a" "x"; ` + strings.Repeat(`if string "${a}" "x" { set "a" "x"; } `, 200)
	if _, err := run(t, loop, Envelope{}, Options{Limits: Limits{MaxSteps: 100}}); err == nil || !strings.Contains(err.Error(), "ran too long") {
		t.Fatalf("step limit: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, _ := Parse([]byte(loop), Limits{})
	if _, err := Run(ctx, s, ParseMessage([]byte(unitMsg)), Envelope{}, Options{}); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("cancelled context: %v", err)
	}
}

func TestInclude(t *testing.T) {
	loader := mapLoader{"personal/self": `require "include"; include "self";`, "personal/bad": "keep"}
	for name, script := range map[string]string{
		"recursion": `require "include"; include "self";`,
		"bad":       `require "include"; include "bad";`,
		"missing":   `require "include"; include "missing";`,
	} {
		res, err := run(t, script, Envelope{}, Options{Loader: loader})
		if err == nil || len(res.Actions) != 1 || !res.Actions[0].Implicit {
			t.Errorf("%s: got %v, %+v; want an error and the implicit keep", name, err, res)
		}
	}
}

type memMemory map[string]time.Time

func (m memMemory) Replied(_ context.Context, s, h string, since time.Time) (bool, error) {
	t, ok := m[s+"\x00"+h]
	return ok && t.After(since), nil
}

func (m memMemory) Record(_ context.Context, s, h string, when time.Time) error {
	m[s+"\x00"+h] = when
	return nil
}

func TestVacationShouldReply(t *testing.T) {
	v := &Vacation{Reason: "away", Handle: "h", Period: 7 * 24 * time.Hour, Addresses: []string{"robert@example.com"}}
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	mem := memMemory{}
	env := Envelope{From: "alice@example.org", To: "bob@example.com"}
	base := "From: alice@example.org\r\nTo: bob@example.com\r\nSubject: Hi\r\n"
	cases := []struct {
		name, hdr string
		env       Envelope
		want      bool
	}{
		{"first", base, env, true},
		{"within period", base, env, false},
		{"null sender", base, Envelope{To: "bob@example.com"}, false},
		{"list", base + "List-Id: <x.example>\r\n", Envelope{From: "c@example.org", To: env.To}, false},
		{"bulk", base + "Precedence: bulk\r\n", Envelope{From: "d@example.org", To: env.To}, false},
		{"auto", base + "Auto-Submitted: auto-replied\r\n", Envelope{From: "e@example.org", To: env.To}, false},
		{"auto no", base + "Auto-Submitted: no\r\n", Envelope{From: "f@example.org", To: env.To}, true},
		{"daemon", base, Envelope{From: "MAILER-DAEMON@example.org", To: env.To}, false},
		{"request", base, Envelope{From: "dev-request@example.org", To: env.To}, false},
		{"not to me", "From: g@example.org\r\nTo: other@example.com\r\n", Envelope{From: "g@example.org", To: env.To}, false},
		{"alias", "From: h@example.org\r\nCc: Robert <robert@example.com>\r\n", Envelope{From: "h@example.org", To: env.To}, true},
	}
	for _, c := range cases {
		got, why, err := v.ShouldReply(context.Background(), ParseMessage([]byte(c.hdr+"\r\nx\r\n")), c.env, mem, now)
		if err != nil || got != c.want {
			t.Errorf("%s: got %v (%s, %v), want %v", c.name, got, why, err, c.want)
		}
	}
	if got, _, _ := v.ShouldReply(context.Background(), ParseMessage([]byte(base+"\r\nx\r\n")), env, mem, now.Add(8*24*time.Hour)); !got {
		t.Error("no reply after the period")
	}
	if s := v.ReplySubject(ParseMessage([]byte(base + "\r\n"))); s != "Auto: Hi" {
		t.Errorf("subject %q", s)
	}
}

func TestErrorPosition(t *testing.T) {
	_, err := Parse([]byte("require \"fileinto\";\n\nif true {\n  fileinto 42;\n}\n"), Limits{})
	var e *Error
	if !errors.As(err, &e) || e.Pos != (Pos{4, 12}) {
		t.Fatalf("got %v, want an error at 4:12 (the argument)", err)
	}
}

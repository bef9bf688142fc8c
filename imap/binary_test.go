package imap

import (
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"testing"
)

// TestBinaryUnknownCTE fetches BINARY and BINARY.SIZE of parts in an
// encoding the server can undo and in one it cannot (RFC 3516 section
// 4.2: NO [UNKNOWN-CTE]), and checks that BODY still serves the latter.
func TestBinaryUnknownCTE(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", "Subject: parts\r\n"+
		"Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n"+
		"--p\r\n"+
		"Content-Type: application/octet-stream\r\n"+
		"Content-Transfer-Encoding: x-uuencode\r\n\r\n"+
		"begin 644 a\r\n#86)C\r\n`\r\nend\r\n"+
		"--p\r\n"+
		"Content-Type: application/octet-stream\r\n"+
		"Content-Transfer-Encoding: Base64\r\n\r\n"+
		"AAECAwQ=\r\n"+
		"--p\r\n"+
		"Content-Type: text/plain\r\n"+
		"Content-Transfer-Encoding: 8BIT\r\n\r\n"+
		"caf\xc3\xa9\r\n"+
		"--p--\r\n")
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	cl.expect("NO [UNKNOWN-CTE]", "FETCH 1 BINARY.PEEK[1]")
	cl.expect("NO [UNKNOWN-CTE]", "FETCH 1 BINARY.SIZE[1]")
	cl.expect("NO [UNKNOWN-CTE]", "UID FETCH 1 (UID BINARY.PEEK[1]<0.2>)")
	wantLine(t, cl.ok("FETCH 1 BODY.PEEK[1]"), "BODY[1] {26}")
	lines := cl.ok("FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2])")
	wantLine(t, lines, "BINARY.SIZE[2] 5")
	if !has(lines, "BINARY[2] ~{5}") {
		t.Fatalf("BINARY[2]: %q", lines)
	}
	lines = cl.ok("FETCH 1 (BINARY.SIZE[3] BINARY.PEEK[3])")
	wantLine(t, lines, "BINARY.SIZE[3] 5")
	if !strings.Contains(strings.Join(lines, "\n"), "caf\xc3\xa9") {
		t.Fatalf("BINARY[3]: %q", lines)
	}
	// None of these set \Seen; a failed BINARY leaves the session usable.
	wantLine(t, cl.ok("FETCH 1 FLAGS"), `FLAGS (\Recent)`)
}

// TestAppendBinaryPartsStoredAsBase64: APPEND with a literal8 (RFC 3516
// section 4.4) of a message with a binary part (NUL, bare LF, bytes
// over 127): BINARY[2] gives the appended bytes back exactly and
// BINARY.SIZE[2] counts them, BODY[2] is their base64 (no NUL outside a
// literal8, RFC 3501 section 4.3), and the other part is as appended.
func TestAppendBinaryPartsStoredAsBase64(t *testing.T) {
	st := newTestStack(t)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	raw := "\x00-\xe4\n\r\n\n\x01"
	msg := "Subject: bin\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\npreamble\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nplain text\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding:\r\n binary\r\n\r\n" + raw + "\r\n" +
		"--b--\r\nepilogue\r\n"
	cl.send(fmt.Sprintf("a1 APPEND INBOX ~{%d+}", len(msg)))
	if _, err := io.WriteString(cl.c, msg+"\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, st := cl.until("a1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("APPEND: %s", st)
	}
	cl.ok("SELECT INBOX")
	cl.send("a2 FETCH 1 (BINARY.PEEK[2])")
	if l := cl.line(); l != fmt.Sprintf("* 1 FETCH (BINARY[2] ~{%d}", len(raw)) {
		t.Fatalf("BINARY[2]: %q", l)
	}
	got := make([]byte, len(raw))
	if _, err := io.ReadFull(cl.r, got); err != nil || string(got) != raw {
		t.Fatalf("BINARY[2] = %q (%v), want %q", got, err, raw)
	}
	if _, st := cl.until("a2"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("FETCH: %s", st)
	}
	cl.ntag = 2
	wantLine(t, cl.ok("FETCH 1 (BINARY.SIZE[2])"), fmt.Sprintf("BINARY.SIZE[2] %d)", len(raw)))
	b64 := base64.StdEncoding.EncodeToString([]byte(raw))
	lines := cl.ok("FETCH 1 (BODY.PEEK[2] BODY.PEEK[2.MIME] BODY.PEEK[1])")
	for _, want := range []string{b64, "Content-Transfer-Encoding: base64", "plain text"} {
		wantLine(t, lines, want)
	}
}

// TestBinaryBase64Lenient: BINARY of a base64 part decodes as RFC 2045
// section 6.8 asks: white space inside lines is ignored, and a last
// group without its padding still gives its bytes.
func TestBinaryBase64Lenient(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", "Subject: b64\r\n"+
		"Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n"+
		"--p\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
		"  aGVs    \r\n bG8g  \r\n   d29y  \t \r\n    bGQ= \r\n\r\n"+
		"--p\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
		"aGVsbG8\r\n"+
		"--p--\r\n")
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	for _, c := range []struct{ part, want string }{{"1", "hello world"}, {"2", "hello"}} {
		lines := cl.ok("FETCH 1 (BINARY.PEEK[%s] BINARY.SIZE[%s])", c.part, c.part)
		want := fmt.Sprintf("* 1 FETCH (BINARY[%s] ~{%d}|%s BINARY.SIZE[%s] %d)", c.part, len(c.want), c.want, c.part, len(c.want))
		if got := strings.Join(lines, "|"); got != want {
			t.Errorf("part %s: %q, want %q", c.part, got, want)
		}
	}
}

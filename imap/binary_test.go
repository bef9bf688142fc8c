package imap

import (
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

package imap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const multipartMessage = "From: =?ISO-8859-1?Q?J=F6rg?= <joerg@far.example>\r\n" +
	"To: alice@local.example\r\n" +
	"Cc: Carol <carol@far.example>\r\n" +
	"Subject: =?UTF-8?B?UmVpc2Vrb3N0ZW4gw7xiZXJwcsO8ZnQ=?=\r\n" +
	"Date: Tue, 03 Mar 2026 09:30:00 +0000\r\n" +
	"Message-ID: <m2@far.example>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=iso-8859-1\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Gr=FC=DFe aus M=FCnchen\r\n" +
	"--b1\r\n" +
	"Content-Type: application/octet-stream; name=\"data.bin\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"AAECAwQ=\r\n" +
	"--b1--\r\n"

// selectedStack is alice's INBOX with three messages: the plain test
// message (UID 1, \Seen), the multipart one (UID 2) and a third with a
// keyword (UID 3).
func selectedStack(t *testing.T) (*testStack, string) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage, `\Seen`)
	st.deliver("alice@local.example", "INBOX", multipartMessage)
	st.deliver("alice@local.example", "INBOX", strings.Replace(testMessage, "Hello there", "Third", 1), "$Label1")
	_, addr := st.serve(st.options())
	return st, addr
}

func TestSelectExamine(t *testing.T) {
	_, addr := selectedStack(t)
	cl := dial(t, addr)
	cl.login("alice@local.example")
	lines, tagged := cl.cmd("EXAMINE INBOX")
	if !strings.HasPrefix(tagged, "OK [READ-ONLY]") {
		t.Fatalf("EXAMINE: %q", tagged)
	}
	wantLine(t, lines, "* 3 EXISTS")
	wantLine(t, lines, "UIDVALIDITY")
	wantLine(t, lines, "UIDNEXT 4")
	wantLine(t, lines, "* FLAGS (", `\Seen`, "$Label1")
	wantLine(t, lines, "[UNSEEN 2]")

	// Read-only: no flag changes, not even \Seen by a BODY[] fetch.
	cl.expect("NO", `STORE 1 +FLAGS (\Deleted)`)
	cl.ok("FETCH 2 BODY[TEXT]")
	wantLine(t, cl.ok("FETCH 2 FLAGS"), `FLAGS (\Recent)`) // delivered to new/: \Recent (RFC 3501 section 2.3.2)
	cl.expect("NO", "MOVE 1 Trash")
	cl.ok("CLOSE")

	lines, tagged = cl.cmd("SELECT INBOX")
	if !strings.HasPrefix(tagged, "OK [READ-WRITE]") {
		t.Fatalf("SELECT: %q", tagged)
	}
	wantLine(t, lines, "PERMANENTFLAGS", `\*`)
	// SELECT of another mailbox closes the first.
	lines = cl.ok("SELECT Trash")
	wantLine(t, lines, "[CLOSED]")
	wantLine(t, lines, "* 0 EXISTS")
	cl.ok("UNSELECT")
	cl.expect("BAD", "FETCH 1 FLAGS")
}

func TestFetch(t *testing.T) {
	_, addr := selectedStack(t)
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")

	lines := cl.ok("UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)")
	if len(lines) != 3 {
		t.Fatalf("UID FETCH 1:*: %q", lines)
	}
	wantLine(t, lines, "* 1 FETCH", "UID 1", `\Seen`, fmt.Sprintf("RFC822.SIZE %d", len(testMessage)))
	wantLine(t, lines, "* 3 FETCH", "UID 3", "$Label1")

	lines = cl.ok("FETCH 1 (ENVELOPE)")
	wantLine(t, lines, `ENVELOPE ("Mon, 02 Mar 2026 10:00:00 +0100" "Hello there" (("Alice" NIL "alice" "local.example"))`, `"<m1@local.example>"`)

	lines = cl.ok("FETCH 2 (BODYSTRUCTURE)")
	wantLine(t, lines, `BODYSTRUCTURE (("text" "plain" ("charset" "iso-8859-1") NIL NIL "quoted-printable"`, `"mixed"`)
	lines = cl.ok("FETCH 2 (BODY)")
	wantLine(t, lines, `BODY (("text" "plain"`)

	// BODY.PEEK keeps \Unseen; partial and header fields.
	lines = cl.ok("FETCH 2 (BODY.PEEK[HEADER.FIELDS (Message-ID)])")
	// Field names that are atoms are echoed as atoms, as Dovecot and Cyrus
	// write them: clients match the response's section to the request.
	wantLine(t, lines, `BODY[HEADER.FIELDS (Message-ID)] {32}`)
	wantLine(t, lines, "Message-ID: <m2@far.example>")
	lines = cl.ok("FETCH 2 (BODY.PEEK[HEADER.FIELDS.NOT (From To Cc Subject Date Message-ID Content-Type)])")
	wantLine(t, lines, "MIME-Version: 1.0")
	if has(lines, "Subject:") {
		t.Fatalf("HEADER.FIELDS.NOT returned Subject: %q", lines)
	}
	lines = cl.ok("FETCH 2 (BODY.PEEK[1]<0.3>)")
	wantLine(t, lines, "BODY[1]<0> {3}")
	lines = cl.ok("FETCH 2 (BODY.PEEK[1.MIME])")
	wantLine(t, lines, "Content-Type: text/plain; charset=iso-8859-1")
	lines = cl.ok("FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2])")
	wantLine(t, lines, "BINARY.SIZE[2] 5")
	wantLine(t, lines, "BINARY[2] ~{5}")
	wantLine(t, cl.ok("FETCH 2 FLAGS"), `FLAGS (\Recent)`) // delivered to new/: \Recent (RFC 3501 section 2.3.2)

	// A non-PEEK fetch sets \Seen and reports it in the same response.
	lines = cl.ok("FETCH 2 (BODY[TEXT])")
	wantLine(t, lines, `\Seen`)
	wantLine(t, cl.ok("FETCH 2 FLAGS"), `\Seen`)

	lines = cl.ok("FETCH 3 (RFC822.HEADER)")
	wantLine(t, lines, "RFC822.HEADER {")
	wantLine(t, cl.ok("FETCH 3 FLAGS"), "FLAGS ($Label1)")
	lines = cl.ok("FETCH 3 RFC822")
	wantLine(t, lines, "Subject: Third")
	wantLine(t, cl.ok("FETCH 3 FLAGS"), `\Seen`)
	lines = cl.ok("FETCH 1 (BODY.PEEK[] RFC822.TEXT)")
	wantLine(t, lines, fmt.Sprintf("BODY[] {%d}", len(testMessage)))
	lines = cl.ok("FETCH 1 FULL")
	wantLine(t, lines, "ENVELOPE", "BODY (", "INTERNALDATE")
	// A range past the end is empty, not an error.
	if lines := cl.ok("UID FETCH 50:60 FLAGS"); len(lines) != 0 {
		t.Fatalf("UID FETCH 50:60: %q", lines)
	}
}

func TestStoreCopyMoveExpunge(t *testing.T) {
	_, addr := selectedStack(t)
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")

	wantLine(t, cl.ok(`STORE 1 +FLAGS (\Flagged $Important)`), "* 1 FETCH", `\Flagged`, `$Important`, `\Seen`)
	wantLine(t, cl.ok(`STORE 1 -FLAGS ($Important)`), "* 1 FETCH (FLAGS (")
	wantLine(t, cl.ok(`UID STORE 2 FLAGS (\Answered)`), "* 2 FETCH", "UID 2", `FLAGS (\Answered \Recent)`)
	if lines := cl.ok(`STORE 1:3 +FLAGS.SILENT (\Draft)`); has(lines, "FETCH") {
		t.Fatalf(".SILENT answered %q", lines)
	}
	wantLine(t, cl.ok("FETCH 1:3 FLAGS"), "* 3 FETCH", `\Draft`)
	cl.expect("BAD", `STORE 1 +FLAGS (bad"flag)`)

	// COPY with COPYUID, then TRYCREATE.
	_, tagged := cl.cmd("COPY 1:2 Archive")
	if !strings.HasPrefix(tagged, "OK [COPYUID ") || !strings.Contains(tagged, " 1:2 1:2]") {
		t.Fatalf("COPY: %q", tagged)
	}
	cl.expect("NO [TRYCREATE]", "COPY 1 Nowhere")
	wantLine(t, cl.ok("STATUS Archive (MESSAGES)"), "MESSAGES 2")

	// MOVE: COPYUID untagged, then EXPUNGE.
	lines := cl.ok("UID MOVE 2 Trash")
	wantLine(t, lines, "* OK [COPYUID ", " 2 1]")
	wantLine(t, lines, "* 2 EXPUNGE")
	wantLine(t, cl.ok("UID FETCH 1:* UID"), "* 2 FETCH", "UID 3")

	// EXPUNGE and UID EXPUNGE.
	cl.ok(`STORE 1:2 +FLAGS.SILENT (\Deleted)`)
	lines = cl.ok("UID EXPUNGE 3")
	if !has(lines, "* 2 EXPUNGE") || has(lines, "* 1 EXPUNGE") {
		t.Fatalf("UID EXPUNGE 3: %q", lines)
	}
	wantLine(t, cl.ok("EXPUNGE"), "* 1 EXPUNGE")
	wantLine(t, cl.ok("STATUS INBOX (MESSAGES)"), "MESSAGES 0")

	// CLOSE expunges silently.
	cl.ok("SELECT Archive")
	cl.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	if lines := cl.ok("CLOSE"); has(lines, "EXPUNGE") {
		t.Fatalf("CLOSE sent %q", lines)
	}
	wantLine(t, cl.ok("STATUS Archive (MESSAGES)"), "MESSAGES 1")
}

func TestSearch(t *testing.T) {
	st, addr := selectedStack(t)
	st.deliver("alice@local.example", "INBOX", "From: x@y.example\r\nSubject: big\r\nDate: Sun, 01 Feb 2026 00:00:00 +0000\r\n\r\n"+strings.Repeat("z", 5000)+"\r\n", `\Deleted`)
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")
	cases := []struct{ query, want string }{
		{"ALL", "* SEARCH 1 2 3 4"},
		{"SEEN", "* SEARCH 1"},
		{"UNSEEN", "* SEARCH 2 3 4"},
		{"DELETED", "* SEARCH 4"},
		{"UNDELETED", "* SEARCH 1 2 3"},
		{"KEYWORD $Label1", "* SEARCH 3"},
		{"UNKEYWORD $Label1", "* SEARCH 1 2 4"},
		{"FROM alice", "* SEARCH 1 3"},
		{"FROM Jörg", "* SEARCH 2"}, // RFC 2047 in ISO-8859-1
		{"SUBJECT überprüft", "* SEARCH 2"},
		{"SUBJECT HELLO", "* SEARCH 1"},
		{"TO bob", "* SEARCH 1 3"},
		{"CC carol", "* SEARCH 2"},
		{"HEADER Message-ID m2@far", "* SEARCH 2"},
		{"HEADER X-Missing \"\"", "* SEARCH"},
		{"BODY münchen", "* SEARCH 2"}, // quoted-printable ISO-8859-1 body
		{"BODY \"first line\"", "* SEARCH 1 3"},
		{"TEXT Third", "* SEARCH 3"},
		{"LARGER 4000", "* SEARCH 4"},
		{"SMALLER 4000", "* SEARCH 1 2 3"},
		{"SENTBEFORE 2-Mar-2026", "* SEARCH 4"},
		{"SENTON 3-Mar-2026", "* SEARCH 2"},
		{"SENTSINCE 3-Mar-2026", "* SEARCH 2"},
		{"SINCE 1-Jan-2020", "* SEARCH 1 2 3 4"},
		{"BEFORE 1-Jan-2020", "* SEARCH"},
		{"OR SEEN KEYWORD $Label1", "* SEARCH 1 3"},
		{"NOT OR SEEN KEYWORD $Label1", "* SEARCH 2 4"},
		{"(SEEN) OR (DELETED) (FROM nobody)", "* SEARCH"},
		{"2:*", "* SEARCH 2 3 4"},
		{"UID 3:4", "* SEARCH 3 4"},
		{"NEW", "* SEARCH 2"}, // the one delivered to new/: \Recent and unseen
		{"CHARSET UTF-8 BODY münchen", "* SEARCH 2"},
	}
	for _, c := range cases {
		lines := cl.ok("SEARCH %s", c.query)
		if len(lines) != 1 || lines[0] != c.want {
			t.Errorf("SEARCH %s: %q, want %q", c.query, lines, c.want)
		}
	}
	wantLine(t, cl.ok("UID SEARCH FROM alice"), "* SEARCH 1 3")
	lines := cl.ok("SEARCH RETURN (MIN MAX COUNT) UNSEEN")
	wantLine(t, lines, "* ESEARCH", "MIN 2", "MAX 4", "COUNT 3")
	lines = cl.ok("UID SEARCH RETURN (ALL) FROM alice")
	wantLine(t, lines, "* ESEARCH", "UID", "ALL 1,3")
	cl.ok("SEARCH RETURN (SAVE) FROM alice")
	wantLine(t, cl.ok("FETCH $ UID"), "* 3 FETCH")
	// A legacy charset is converted; an unknown one is answered with the
	// list of those taken.
	wantLine(t, cl.ok("SEARCH CHARSET KOI8-R BODY x"), "* SEARCH")
	cl.expect("NO [BADCHARSET (UTF-8 US-ASCII ISO-8859-1 ", "SEARCH CHARSET X-BOGUS BODY x")
	// Unknown keys and malformed dates are the client's error.
	for _, q := range []string{"BOGUS", "FUZZY BODY x", "NOT (SEEN BOGUS)", "SINCE 32-Jan-2020", "ON yesterday", "BEFORE 1-Foo-2020"} {
		cl.expect("BAD [CLIENTBUG]", "SEARCH %s", q)
	}
	wantLine(t, cl.ok("SEARCH SINCE 1-jan-2000 BEFORE \"01-Jan-2100\" 1:*"), "* SEARCH 1 2 3 4")
	cl.ok("NOOP")
}

// TestSearchCharsets finds words in bodies and header fields written in
// legacy charsets, and checks that BINARY still returns a part's bytes
// in its own charset.
func TestSearchCharsets(t *testing.T) {
	st := newTestStack(t)
	msgs := []string{
		// KOI8-R: "Привет" in the subject (B) and the body.
		"Subject: =?KOI8-R?B?8NLJ18XU?=\r\nContent-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4 \xcd\xc9\xd2\r\n",
		// Windows-1252: "Café €5" with 0x80 for the euro sign.
		"Subject: =?windows-1252?Q?Caf=E9?=\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\nCaf\xe9 \x805\r\n",
		// Shift_JIS: "日本" quoted-printable.
		"Subject: plain\r\nContent-Type: text/plain; charset=Shift_JIS\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=93=FA=96=7B\r\n",
		multipartMessage,
	}
	for _, m := range msgs {
		st.deliver("alice@local.example", "INBOX", m)
	}
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("EXAMINE INBOX")
	for _, c := range []struct{ query, want string }{
		{`SUBJECT "привет"`, "* SEARCH 1"},
		{`BODY "мир"`, "* SEARCH 1"},
		{`SUBJECT "café"`, "* SEARCH 2"},
		{`BODY "€5"`, "* SEARCH 2"},
		{`BODY "日本"`, "* SEARCH 3"},
		{"TEXT münchen", "* SEARCH 4"},
	} {
		lines := cl.ok("SEARCH CHARSET UTF-8 %s", c.query)
		if len(lines) != 1 || lines[0] != c.want {
			t.Errorf("SEARCH %s: %q, want %q", c.query, lines, c.want)
		}
	}
	// BINARY decodes the transfer encoding only: ISO-8859-1 bytes stay.
	lines := cl.ok("FETCH 4 BINARY.PEEK[1]")
	wantLine(t, lines, "BINARY[1] ~{17}")
	if !has(lines, "Gr\xfc\xdfe aus M\xfcnchen") {
		t.Fatalf("BINARY[1] converted the charset: %q", lines)
	}
}

// TestFetchFromIndex shows that SELECT and a FETCH of UIDs, flags and
// sizes are answered from maildir's index: the message files are cut to
// nothing behind its back, and the answers do not change.
func TestFetchFromIndex(t *testing.T) {
	st, addr := selectedStack(t)
	cur := filepath.Join(st.dir, "mail/local.example/alice/Maildir/cur")
	entries, err := os.ReadDir(cur)
	must(t, err)
	for _, e := range entries {
		must(t, os.Truncate(filepath.Join(cur, e.Name()), 0))
	}
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("SELECT INBOX"), "* 3 EXISTS")
	lines := cl.ok("UID FETCH 1:* (UID FLAGS RFC822.SIZE)")
	wantLine(t, lines, "UID 1", fmt.Sprintf("RFC822.SIZE %d", len(testMessage)))
	wantLine(t, lines, "UID 2", fmt.Sprintf("RFC822.SIZE %d", len(multipartMessage)))
	// Content does come from the file.
	wantLine(t, cl.ok("FETCH 1 BODY.PEEK[]"), "BODY[] {0}")
}

func TestEnable(t *testing.T) {
	_, addr := selectedStack(t)
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("ENABLE IMAP4rev2"), "* ENABLED IMAP4rev2")
	lines := cl.ok("SELECT INBOX")
	if has(lines, "RECENT") {
		t.Fatalf("IMAP4rev2 SELECT sent RECENT: %q", lines)
	}
	// IMAP4rev2 answers SEARCH with ESEARCH, and has no \Recent flag.
	wantLine(t, cl.ok("SEARCH SEEN"), "* ESEARCH", "ALL 1")
	if lines := cl.ok("FETCH 1:* FLAGS"); has(lines, `\Recent`) {
		t.Fatalf("IMAP4rev2 FETCH sent \\Recent: %q", lines)
	}
	wantLine(t, lines, `* LIST () "." INBOX`)
}

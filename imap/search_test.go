package imap

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailagent/mailagent/imap/internal/imapwire"
	"github.com/mailagent/mailagent/maildir"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

// jpSubject is the Japanese subject of charsetMessage ("Japanese test
// mail"), sent in ISO-2022-JP as mail from Japan still is.
const jpSubject = "日本語のテストメール"

// charsetMessage has an ISO-2022-JP encoded-word Subject and a
// quoted-printable ISO-8859-1 body.
func charsetMessage(t testing.TB) string {
	t.Helper()
	jis, err := japanese.ISO2022JP.NewEncoder().String(jpSubject)
	must(t, err)
	return "From: =?ISO-8859-1?Q?J=FCrgen_M=FCller?= <jm@far.example>\r\n" +
		"To: alice@local.example\r\n" +
		"Subject: =?ISO-2022-JP?B?" + base64.StdEncoding.EncodeToString([]byte(jis)) + "?=\r\n" +
		"Date: Mon, 02 Mar 2026 00:30:00 +0100\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=ISO-8859-1\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"Gr=FC=DFe aus K=F6ln, die Stra=DFe ist nass. Caf=E9 cr=E8me =\r\n" +
		"br=FBl=E9e.\r\n"
}

// cmdWithLiteral sends "tag <before>{n}" and, once the server asks for
// it, the literal and the rest of the line; it returns the untagged
// lines and the tagged reply.
func (cl *client) cmdWithLiteral(before string, literal []byte, after string) ([]string, string) {
	cl.t.Helper()
	cl.ntag++
	tag := "c" + strconv.Itoa(cl.ntag)
	cl.send(fmt.Sprintf("%s %s{%d}", tag, before, len(literal)))
	var lines []string
	for {
		l := cl.line()
		if strings.HasPrefix(l, "+") {
			break
		}
		if st, ok := strings.CutPrefix(l, tag+" "); ok {
			return lines, st
		}
		lines = append(lines, l)
	}
	if _, err := cl.c.Write(append(literal, after+"\r\n"...)); err != nil {
		cl.t.Fatal(err)
	}
	more, st := cl.until(tag)
	return append(lines, more...), st
}

// TestSearchCharsetOnTheWire searches a message with an ISO-2022-JP
// Subject and an ISO-8859-1 body with strings sent as literal bytes.
func TestSearchCharsetOnTheWire(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	st.deliver("alice@local.example", "INBOX", charsetMessage(t))
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("EXAMINE INBOX")

	for _, c := range []struct {
		key  string
		text string
	}{
		{"SUBJECT", "テストメール"},
		{"SUBJECT", jpSubject},
		{"BODY", "köln"},
		{"BODY", "KÖLN"},
		{"BODY", "Straße"},
		{"BODY", "CRÈME BRÛLÉE"}, // across a soft line break
		{"TEXT", "jürgen müller"},
		{"FROM", "JÜRGEN"},
	} {
		lines, reply := cl.cmdWithLiteral("SEARCH CHARSET UTF-8 "+c.key+" ", []byte(c.text), "")
		if !strings.HasPrefix(reply, "OK") || len(lines) != 1 || lines[0] != "* SEARCH 2" {
			t.Errorf("SEARCH CHARSET UTF-8 %s %q: %q %q", c.key, c.text, lines, reply)
		}
	}
	// Without CHARSET (US-ASCII, whose superset UTF-8 is taken too).
	wantLine(t, cl.ok(`SEARCH BODY "stra`+"\u00dfe"+`"`), "* SEARCH 2")

	// The same strings in the charsets the message uses, converted to
	// UTF-8 before the search.
	latin1, err := charmap.ISO8859_1.NewEncoder().String("KÖLN")
	must(t, err)
	jis, err := japanese.ISO2022JP.NewEncoder().String("テストメール")
	must(t, err)
	for _, c := range []struct {
		charset, key string
		text         []byte
	}{
		{"ISO-8859-1", "BODY", []byte(latin1)},
		{"ISO-2022-JP", "SUBJECT", []byte(jis)},
	} {
		lines, reply := cl.cmdWithLiteral("SEARCH CHARSET "+c.charset+" "+c.key+" ", c.text, "")
		if !strings.HasPrefix(reply, "OK") || len(lines) != 1 || lines[0] != "* SEARCH 2" {
			t.Errorf("SEARCH CHARSET %s: %q %q", c.charset, lines, reply)
		}
	}
	cl.expect("NO [BADCHARSET", "SEARCH CHARSET X-NO-SUCH-CHARSET BODY x")

	// A search string that is not UTF-8 is a client error.
	_, reply := cl.cmdWithLiteral("SEARCH CHARSET UTF-8 BODY ", []byte(latin1), "")
	if !strings.HasPrefix(reply, "BAD [CLIENTBUG]") {
		t.Errorf("Latin-1 bytes as UTF-8: %q", reply)
	}
	cl.ok("NOOP")
}

// matchRaw runs criteria, given in charset, against one message the
// way SEARCH does once the parser has read the command.
func matchRaw(t *testing.T, raw, charset string, c *imapwire.SearchCriteria) (bool, error) {
	t.Helper()
	enc, err := searchEncoding(charset)
	if err != nil {
		return false, err
	}
	if err := decodeSearchCriteria(c, enc); err != nil {
		return false, err
	}
	mc := &matchContext{m: &maildir.Message{InternalDate: time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC)}}
	mc.setRaw([]byte(raw))
	return mc.match((&selection{}).prepareCriteria(c, 0, 0)), nil
}

// TestSearchCharsetConversion converts search strings sent in the
// charsets mail clients use and matches them against a message.
func TestSearchCharsetConversion(t *testing.T) {
	msg := charsetMessage(t)
	encode := func(name, s string) string {
		t.Helper()
		e, err := searchEncoding(name)
		must(t, err)
		if e == nil {
			return s
		}
		out, err := e.NewEncoder().String(s)
		must(t, err)
		return out
	}
	for _, c := range []struct {
		charset, key, text string
		want               bool
	}{
		{"ISO-8859-1", "BODY", "KÖLN", true},
		{"iso-8859-1", "BODY", "straße", true},
		{"latin1", "TEXT", "Müller", true},
		{"ISO-8859-15", "BODY", "crème", true},
		{"WINDOWS-1252", "BODY", "Café", true},
		{"ISO-2022-JP", "SUBJECT", "テストメール", true},
		{"ISO-2022-JP", "SUBJECT", "日本語", true},
		{"SHIFT_JIS", "SUBJECT", "テスト", true},
		{"EUC-JP", "SUBJECT", "メール", true},
		{"UTF-8", "SUBJECT", "のテ", true},
		{"US-ASCII", "BODY", "aus", true},
		{"ISO-8859-1", "BODY", "Kölner", false},
		{"KOI8-R", "BODY", "привет", false},
	} {
		text := encode(c.charset, c.text)
		var crit imapwire.SearchCriteria
		switch c.key {
		case "BODY":
			crit.Body = []string{text}
		case "TEXT":
			crit.Text = []string{text}
		default:
			crit.Header = []imap.SearchCriteriaHeaderField{{Key: c.key, Value: text}}
		}
		// Nested under NOT NOT, to convert strings at every level.
		outer := imapwire.SearchCriteria{Not: []imapwire.SearchCriteria{{Not: []imapwire.SearchCriteria{crit}}}}
		got, err := matchRaw(t, msg, c.charset, &outer)
		if err != nil || got != c.want {
			t.Errorf("CHARSET %s %s %q: %v, %v; want %v", c.charset, c.key, c.text, got, err, c.want)
		}
	}

	// Every charset BADCHARSET names is one searchEncoding takes, and
	// the usual aliases are taken too.
	for _, name := range append(slices.Clone(searchCharsets), "latin2", "cp1251", "csISO2022JP", "x-sjis", "ISO-8859-11", "windows-874", "koi8-ru") {
		if _, err := searchEncoding(name); err != nil {
			t.Errorf("searchEncoding(%q): %v", name, err)
		}
	}
	for _, name := range []string{"X-NO-SUCH", "UTF-16", "UTF-16LE", "UTF-32", "x-user-defined", "replacement", ""} {
		_, err := searchEncoding(name)
		if name == "" {
			if err != nil {
				t.Errorf("no charset: %v", err)
			}
			continue
		}
		if err != errBadCharset {
			t.Errorf("searchEncoding(%q) = %v, want BADCHARSET", name, err)
		}
	}
	code := string(errBadCharset.Code)
	if !regexp.MustCompile(`^BADCHARSET \(UTF-8 US-ASCII ISO-8859-1 .* BIG5\)$`).MatchString(code) {
		t.Errorf("BADCHARSET code %q", code)
	}
	// A string that is not valid in its charset.
	if _, err := matchRaw(t, msg, "UTF-8", &imapwire.SearchCriteria{Body: []string{"\xff"}}); err != errSearchNotUTF8 {
		t.Errorf("invalid UTF-8: %v", err)
	}
	if _, err := matchRaw(t, msg, "ISO-2022-JP", &imapwire.SearchCriteria{Body: []string{"\x1b$B\xff\xff"}}); err != errSearchNotUTF8 {
		t.Errorf("invalid ISO-2022-JP: %v", err)
	}
}

// TestSearchFolding compares text by i;unicode-casemap: Unicode simple
// case folding after compatibility decomposition (RFC 5051).
func TestSearchFolding(t *testing.T) {
	msg := "Subject: \u212a-band \u00c5ngstr\u00f6m\r\n" + // Kelvin sign, Å
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
		"ΟΔΥΣΣΕΥΣ returns; ǅemal; ﬀ ligature\r\n"
	for _, c := range []struct {
		crit imapwire.SearchCriteria
		want bool
	}{
		{imapwire.SearchCriteria{Body: []string{"οδυσσευς"}}, true}, // final sigma
		{imapwire.SearchCriteria{Body: []string{"Οδυσσευσ"}}, true},
		{imapwire.SearchCriteria{Body: []string{"ǆEMAL"}}, true}, // title case digraph
		{imapwire.SearchCriteria{Body: []string{"RETURNS;"}}, true},
		{imapwire.SearchCriteria{Body: []string{"ff ligature"}}, true}, // NFKD makes ﬀ ff (RFC 5051)
		{imapwire.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "k-BAND"}}}, true},
		{imapwire.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "subject", Value: "\u212bNGSTRÖM"}}}, true}, // Angstrom sign
		{imapwire.SearchCriteria{Text: []string{"K-band"}}, true},
		{imapwire.SearchCriteria{Body: []string{"K-band"}}, false},
	} {
		got, err := matchRaw(t, msg, "UTF-8", &c.crit)
		if err != nil || got != c.want {
			t.Errorf("%+v: %v, %v; want %v", c.crit, got, err, c.want)
		}
	}
	for _, c := range [][2]string{{"Σ", "ς"}, {"k", "\u212a"}, {"ǅ", "ǆ"}, {"ß", "ẞ"}, {"İ", "İ"}} {
		if foldString(c[0]) != foldString(c[1]) {
			t.Errorf("%q and %q fold apart: %q %q", c[0], c[1], foldString(c[0]), foldString(c[1]))
		}
	}
	if foldString("already folded") != "already folded" || foldString("MiXeD") != "mixed" {
		t.Error("ASCII folding")
	}
}

// TestSearchStructure searches inside attached messages and parts with
// legacy encodings.
func TestSearchStructure(t *testing.T) {
	inner := "Subject: Inner topic\r\n" +
		"Content-Type: text/plain; charset=windows-1251\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte("Secret payload \xcf\xf0\xe8\xe2\xe5\xf2")) + "\r\n"
	msg := "Subject: Outer\r\n" +
		"Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n" +
		"--o\r\n" +
		"Content-Type: text/html; charset=\"iso-8859-2\"\r\n\r\n" +
		"<p>\xa3\xf3d\xbc</p>\r\n" + // Łódź
		"--o\r\n" +
		"Content-Type: message/rfc822\r\n\r\n" +
		inner +
		"--o\r\n" +
		"Content-Type: image/png; name=\"secret.png\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte("not searched: hidden word")) + "\r\n" +
		"--o\r\n" +
		"Content-Type: text/plain\r\n\r\n" +
		"Undeclared charset: na\xefve\r\n" + // Windows-1252 without a label
		"--o--\r\n"
	for _, c := range []struct {
		crit imapwire.SearchCriteria
		want bool
	}{
		{imapwire.SearchCriteria{Body: []string{"secret payload привет"}}, true},
		{imapwire.SearchCriteria{Body: []string{"inner topic"}}, true}, // attached header is body
		{imapwire.SearchCriteria{Text: []string{"INNER TOPIC"}}, true},
		{imapwire.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "inner"}}}, false},
		{imapwire.SearchCriteria{Body: []string{"łódź"}}, true},
		{imapwire.SearchCriteria{Body: []string{"hidden word"}}, false},
		{imapwire.SearchCriteria{Text: []string{"secret.png"}}, true}, // a part's header
		{imapwire.SearchCriteria{Body: []string{"secret.png"}}, false},
		{imapwire.SearchCriteria{Body: []string{"naïve"}}, true},
		{imapwire.SearchCriteria{Body: []string{"payloadпривет"}}, false},
	} {
		got, err := matchRaw(t, msg, "UTF-8", &c.crit)
		if err != nil || got != c.want {
			t.Errorf("%+v: %v, %v; want %v", c.crit, got, err, c.want)
		}
	}
}

// TestSearchSentDates compares the Date field's date as written, in its
// own zone, and dates a message without one by its INTERNALDATE.
func TestSearchSentDates(t *testing.T) {
	day := func(s string) time.Time {
		d, err := time.Parse("2-Jan-2006", s)
		must(t, err)
		return d
	}
	on := func(s string) imapwire.SearchCriteria {
		return imapwire.SearchCriteria{SentSince: day(s), SentBefore: day(s).Add(24 * time.Hour)}
	}
	for _, c := range []struct {
		date string
		crit imapwire.SearchCriteria
		want bool
	}{
		{"Mon, 02 Mar 2026 00:30:00 +0100", on("2-Mar-2026"), true}, // 1 Mar in UTC
		{"Mon, 02 Mar 2026 00:30:00 +0100", on("1-Mar-2026"), false},
		{"Sun, 01 Mar 2026 23:30:00 -0500", on("1-Mar-2026"), true}, // 2 Mar in UTC
		{"Sun, 01 Mar 2026 23:30:00 -0500", imapwire.SearchCriteria{SentBefore: day("2-Mar-2026")}, true},
		{"Sun, 01 Mar 2026 23:30:00 -0500", imapwire.SearchCriteria{SentSince: day("2-Mar-2026")}, false},
		{"Sun, 01 Mar 2026 23:30:00 -0500", imapwire.SearchCriteria{SentSince: day("1-Mar-2026")}, true},
		{"2 Mar 2026 10:00 +0000 (UTC)", on("2-Mar-2026"), true},
		{"Mon, 2 Mar 2026 10:00:00 EST", on("2-Mar-2026"), true},
		{"", on("5-Mar-2026"), true},        // no Date: INTERNALDATE
		{"garbage", on("5-Mar-2026"), true}, // unreadable: INTERNALDATE
		{"", imapwire.SearchCriteria{SentBefore: day("1-Jan-2000")}, false},
	} {
		msg := "Subject: dated\r\n"
		if c.date != "" {
			msg += "Date: " + c.date + "\r\n"
		}
		msg += "\r\nbody\r\n"
		got, err := matchRaw(t, msg, "", &c.crit)
		if err != nil || got != c.want {
			t.Errorf("Date %q, since %v before %v: %v, %v; want %v", c.date, c.crit.SentSince, c.crit.SentBefore, got, err, c.want)
		}
	}
}

// TestSearchSizesAndSave checks LARGER and SMALLER against RFC822.SIZE
// at their bounds, SEARCHRES's saved result with MIN and MAX, and NOT
// and OR nesting past the limit.
func TestSearchSizesAndSave(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage, "$Work")
	// LF line endings on disk: RFC822.SIZE counts them as CRLF.
	st.deliver("alice@local.example", "INBOX", strings.ReplaceAll(testMessage, "\r\n", "\n"))
	st.deliver("alice@local.example", "INBOX", testMessage+strings.Repeat("more\r\n", 100), `\Flagged`)
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("SELECT INBOX")

	size := len(testMessage)
	wantLine(t, cl.ok("FETCH 2 RFC822.SIZE"), fmt.Sprintf("RFC822.SIZE %d", size))
	for _, c := range []struct{ query, want string }{
		{fmt.Sprintf("LARGER %d", size-1), "* SEARCH 1 2 3"},
		{fmt.Sprintf("LARGER %d", size), "* SEARCH 3"},
		{fmt.Sprintf("SMALLER %d", size+1), "* SEARCH 1 2"},
		{fmt.Sprintf("SMALLER %d", size), "* SEARCH"},
		{fmt.Sprintf("LARGER %d SMALLER %d", size-1, size+1), "* SEARCH 1 2"},
		{"KEYWORD $work", "* SEARCH 1"},
		{"UNKEYWORD $WORK", "* SEARCH 2 3"},
		{"UNKEYWORD $Never", "* SEARCH 1 2 3"},
		{"NOT FLAGGED", "* SEARCH 1 2"},
		{"SUBJECT hello SMALLER 400", "* SEARCH 1 2"},
	} {
		lines := cl.ok("SEARCH %s", c.query)
		if len(lines) != 1 || lines[0] != c.want {
			t.Errorf("SEARCH %s: %q, want %q", c.query, lines, c.want)
		}
	}

	// SAVE with MIN (and MAX), and neither ALL nor COUNT, keeps those
	// messages only (RFC 5182 section 2.1).
	cl.ok("SEARCH RETURN (SAVE MIN) ALL")
	if lines := cl.ok("FETCH $ (UID)"); len(lines) != 1 || !strings.HasPrefix(lines[0], "* 1 FETCH") {
		t.Errorf("after SAVE MIN: %q", lines)
	}
	cl.ok("SEARCH RETURN (SAVE MIN MAX) ALL")
	if lines := cl.ok("FETCH $ (UID)"); len(lines) != 2 || !has(lines, "* 3 FETCH") {
		t.Errorf("after SAVE MIN MAX: %q", lines)
	}
	cl.ok("SEARCH RETURN (SAVE MIN COUNT) ALL")
	if lines := cl.ok("FETCH $ (UID)"); len(lines) != 3 {
		t.Errorf("after SAVE MIN COUNT: %q", lines)
	}
	wantLine(t, cl.ok("UID SEARCH $ SMALLER 400"), "* SEARCH 1 2")

	// NOT and OR nest up to 64 levels.
	cl.ok("SEARCH %sALL", strings.Repeat("NOT ", 63))
	wantLine(t, cl.ok("SEARCH %sALL", strings.Repeat("NOT ", 64)), "* SEARCH 1 2 3")
	wantLine(t, cl.ok("SEARCH %sFLAGGED", strings.Repeat("OR DELETED ", 64)), "* SEARCH 3")
	for _, q := range []string{
		strings.Repeat("NOT ", 65) + "ALL",
		strings.Repeat("NOT ", 10000) + "ALL",
		strings.Repeat("OR DELETED ", 65) + "ALL",
		strings.Repeat("OR ", 3000) + strings.Repeat("ALL ", 3000) + "ALL",
		strings.Repeat("NOT (", 200) + "ALL" + strings.Repeat(")", 200),
		"OR (" + strings.Repeat("NOT ", 70) + "ALL) SEEN",
	} {
		if _, reply := cl.cmd("%s", "SEARCH "+q); !strings.HasPrefix(reply, "BAD [LIMIT]") {
			t.Errorf("SEARCH %.40s... (%d bytes): %q, want BAD [LIMIT]", q, len(q), reply)
		}
	}
	// A failed SEARCH with SAVE empties "$".
	cl.expect("BAD [LIMIT]", "SEARCH RETURN (SAVE) %sALL", strings.Repeat("NOT ", 100))
	if lines := cl.ok("FETCH $ (UID)"); len(lines) != 0 {
		t.Errorf("$ after a failed SAVE: %q", lines)
	}
	// Each parenthesis is a level of nesting too: past 64 the parser
	// answers BAD [LIMIT].
	wantLine(t, cl.ok("SEARCH %sALL%s", strings.Repeat("(", 60), strings.Repeat(")", 60)), "* SEARCH 1 2 3")
	cl.expect("BAD [LIMIT]", "SEARCH %sALL%s", strings.Repeat("(", 500), strings.Repeat(")", 500))
	_, reply := cl.cmd("SEARCH %sALL%s", strings.Repeat("(", 10000), strings.Repeat(")", 10000))
	if !strings.HasPrefix(reply, "BAD [LIMIT]") {
		t.Errorf("10,000 parentheses: %q", reply)
	}
	cl.ok("NOOP")
}

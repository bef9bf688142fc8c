package imap

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

func TestConvertSearchCharset(t *testing.T) {
	latin1 := func(s string) string {
		out, err := charmap.ISO8859_1.NewEncoder().String(s)
		must(t, err)
		return out
	}
	jis, err := japanese.ISO2022JP.NewEncoder().String("テスト")
	must(t, err)
	lit := func(s string) string { return fmt.Sprintf("{%d}\r\n%s", len(s), s) }
	for _, c := range []struct {
		in, want string
		err      error
	}{
		{"a SEARCH CHARSET ISO-8859-1 BODY " + lit(latin1("Köln")) + "\r\n",
			"a SEARCH CHARSET UTF-8 BODY \"Köln\"\r\n", nil},
		{"a UID SEARCH RETURN (MIN SAVE) CHARSET \"iso-8859-1\" OR SUBJECT \"" + latin1("Grüße") + "\" HEADER X-Tag " + lit(latin1("\"é\\")) + " SINCE 1-Jan-2026\r\n",
			"a UID SEARCH RETURN (MIN SAVE) CHARSET UTF-8 OR SUBJECT \"Grüße\" HEADER X-Tag \"\\\"é\\\\\" SINCE 1-Jan-2026\r\n", nil},
		{"a SEARCH CHARSET ISO-2022-JP SUBJECT " + lit(jis) + " BODY {3+}\r\na\r\nb\r\n",
			"a SEARCH CHARSET UTF-8 SUBJECT \"テスト\" BODY {3+}\r\na\r\nb\r\n", nil},
		{"a SEARCH CHARSET " + lit("KOI8-R") + " TEXT " + lit("\xf0\xd2\xc9") + "\r\n",
			"a SEARCH CHARSET UTF-8 TEXT \"При\"\r\n", nil},
		{"a SEARCH CHARSET windows-1252 TEXT x\x80\r\n", "a SEARCH CHARSET UTF-8 TEXT x\x80\r\n", nil}, // atoms stay
		// Unchanged.
		{"a SEARCH CHARSET UTF-8 BODY \"é\"\r\n", "a SEARCH CHARSET UTF-8 BODY \"é\"\r\n", nil},
		{"a SEARCH CHARSET us-ascii BODY x\r\n", "a SEARCH CHARSET us-ascii BODY x\r\n", nil},
		{"a SEARCH BODY \"CHARSET\"\r\n", "a SEARCH BODY \"CHARSET\"\r\n", nil},
		{"a FETCH 1 BODY[]\r\n", "a FETCH 1 BODY[]\r\n", nil},
		{"a SEARCH CHARSET\r\n", "a SEARCH CHARSET\r\n", nil},
		// Refused.
		{"a SEARCH CHARSET X-UNKNOWN BODY x\r\n", "", errBadCharset},
		{"a SEARCH CHARSET UTF-16 BODY x\r\n", "", errBadCharset},
		{"a SEARCH CHARSET ISO-2022-JP BODY " + lit("\x1b$B\xff\xff") + "\r\n", "", errSearchNotUTF8},
	} {
		got, err := convertSearchCharset([]byte(c.in))
		if err != c.err || string(got) != c.want {
			t.Errorf("%q:\n got %q, %v\nwant %q, %v", c.in, got, err, c.want, c.err)
		}
	}
}

// TestConvertSearchCharsetOnTheWire converts commands in ISO-8859-1 and
// ISO-2022-JP and sends the result to the server, which finds the
// message written in those charsets.
func TestConvertSearchCharsetOnTheWire(t *testing.T) {
	st := newTestStack(t)
	st.deliver("alice@local.example", "INBOX", testMessage)
	st.deliver("alice@local.example", "INBOX", charsetMessage(t))
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	cl.ok("EXAMINE INBOX")
	latin1, err := charmap.ISO8859_1.NewEncoder().String("KÖLN")
	must(t, err)
	jis, err := japanese.ISO2022JP.NewEncoder().String("テストメール")
	must(t, err)
	for i, cmd := range []string{
		fmt.Sprintf("SEARCH CHARSET ISO-8859-1 BODY {%d}\r\n%s\r\n", len(latin1), latin1),
		fmt.Sprintf("UID SEARCH RETURN (ALL) CHARSET ISO-2022-JP SUBJECT {%d}\r\n%s\r\n", len(jis), jis),
		fmt.Sprintf("SEARCH CHARSET ISO-8859-1 NOT NOT TEXT \"%s\"\r\n", latin1),
	} {
		tag := fmt.Sprintf("w%d", i)
		out, err := convertSearchCharset([]byte(tag + " " + cmd))
		must(t, err)
		if strings.Contains(string(out), "{") {
			t.Fatalf("%q still has a literal", out)
		}
		if _, err := cl.c.Write(out); err != nil {
			t.Fatal(err)
		}
		lines, reply := cl.until(tag)
		if !strings.HasPrefix(reply, "OK") || len(lines) != 1 || !(lines[0] == "* SEARCH 2" || strings.HasSuffix(lines[0], "UID ALL 2")) {
			t.Errorf("%q: %q %q", out, lines, reply)
		}
	}
}

package imap

import (
	"strings"
	"testing"
)

// TestI18NLevel1: SEARCH compares by i;unicode-casemap (RFC 5051), as
// the advertised I18NLEVEL=1 (RFC 5255) requires: case-insensitive
// beyond ASCII, and composed and decomposed forms alike.
func TestI18NLevel1(t *testing.T) {
	st := newTestStack(t)
	for _, m := range []string{
		"Subject: =?UTF-8?Q?=C3=A4rger?=\r\n\r\nplain\r\n",  // ärger, composed
		"Subject: =?UTF-8?Q?a=CC=88rger?=\r\n\r\nplain\r\n", // a + combining diaeresis
		"Subject: arger\r\n\r\nplain\r\n",                   // no diaeresis
		"Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xef\xac\x81le \xce\xa3\xce\xbf\xcf\x86\xce\xaf\xce\xb1\r\n", // ﬁle Σοφία
	} {
		st.deliver("alice@local.example", "INBOX", m)
	}
	_, addr := st.serve(st.options())
	cl := dial(t, addr)
	cl.login("alice@local.example")
	wantLine(t, cl.ok("CAPABILITY"), " I18NLEVEL=1 ")
	cl.ok("SELECT INBOX")
	for _, tc := range []struct{ key, want string }{
		{"SUBJECT " + lit("ÄRGER"), "* SEARCH 1 2"},
		{"SUBJECT " + lit("A\u0308RGER"), "* SEARCH 1 2"},
		{"SUBJECT ARGER", "* SEARCH 3"},
		{"BODY FILE", "* SEARCH 4"},
		{"TEXT " + lit("ΣΟΦΊΑ"), "* SEARCH 4"},
		{"BODY " + lit("σοφία"), "* SEARCH 4"},
	} {
		lines := cl.ok("SEARCH CHARSET UTF-8 %s", tc.key)
		if len(lines) != 1 || lines[0] != tc.want {
			t.Errorf("SEARCH %s: %q, want %q", tc.key, lines, tc.want)
		}
	}
}

// BenchmarkSearchFold: the i;unicode-casemap key SEARCH builds of a
// message's text against Unicode simple case folding alone (what
// SEARCH used before I18NLEVEL=1), on 1 MiB of ASCII and of German and
// Greek text.
func BenchmarkSearchFold(b *testing.B) {
	texts := map[string]string{
		"ascii":     strings.Repeat("Lorem ipsum dolor sit amet, consectetur.\r\n", 1<<20/42),
		"non-ascii": strings.Repeat("Größere Ärger über Straßen, ΟΔΥΣΣΕΥΣ σοφία.\r\n", 1<<20/56),
	}
	for _, name := range []string{"ascii", "non-ascii"} {
		s := texts[name]
		b.Run(name+"/simple-fold", func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				foldString(s)
			}
		})
		b.Run(name+"/unicode-casemap", func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				searchFold(s)
			}
		})
	}
}

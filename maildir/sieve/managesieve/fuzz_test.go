package managesieve

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzSplitWords checks the command-line splitter: no panic, and every
// quoted word it returns read back through quote gives the same word.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`PUTSCRIPT "a b" {5+}`, `AUTHENTICATE "PLAIN" "AGJvYgBz"`, `"a\"b\\c"`, `NOOP`, `"unterminated`, `  x  "" y`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitWords(s)
		if err != nil {
			return
		}
		for _, w := range words {
			if v, ok := strings.CutPrefix(w, "\x00"); ok && strings.ContainsAny(v, "\r\n\x00") {
				if q := quote(v); q != "{"+strconv.Itoa(len(v))+"}\r\n"+v {
					t.Fatalf("%q: word %q quoted as %q, want a literal", s, v, q)
				}
			} else if ok {
				again, err := splitWords(quote(v))
				if err != nil || len(again) != 1 || again[0] != w {
					t.Fatalf("%q: word %q reads back as %q, %v", s, v, again, err)
				}
			} else if strings.ContainsAny(w, " \"") {
				t.Fatalf("%q: atom %q holds a space or quote", s, w)
			}
		}
	})
}

// FuzzScriptPath checks that every name a client can give either names no
// script or names a file directly inside the user's sieve/ directory.
func FuzzScriptPath(f *testing.F) {
	for _, s := range []string{"main", "../../alice/sieve/secret", "..", ".", "a/b", "a\x00b", "é", "..\\x", "a\u2028b", ""} {
		f.Add(s)
	}
	s := storage{home: "/home/u"}
	f.Fuzz(func(t *testing.T, name string) {
		p, ok := s.path(name)
		if !ok {
			return
		}
		if filepath.Dir(p) != s.dir() || filepath.Base(p) != name+suffix {
			t.Fatalf("%q names %q, outside %q", name, p, s.dir())
		}
	})
}

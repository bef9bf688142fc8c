package managesieve

import (
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
			if v, ok := strings.CutPrefix(w, "\x00"); ok {
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

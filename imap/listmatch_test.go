package imap

import (
	"fmt"
	"strings"
	"testing"
)

// TestWildMatch: runs of wildcards match as one, "*" among them making
// the run a "*"; a pattern needing more bytes than the name has fails.
func TestWildMatch(t *testing.T) {
	for _, c := range []struct {
		name, pat string
		want      bool
	}{
		{"a.b.c", "*", true},
		{"a.b.c", "%", false},
		{"a.b.c", "a%%%.b.%", true},
		{"a.b.c", "a%%%", false},
		{"a.b.c", "a%*%", true},
		{"a.b.c", "**%**c", true},
		{"a.b.c", "%%.%%.%%", true},
		{"abc", "a%b%c%d", false},
		{"abc", "abc%", true},
		{"", "%*%", true},
		{"", "a", false},
	} {
		if got := wildMatch(c.name, c.pat, '.'); got != c.want {
			t.Errorf("wildMatch(%q, %q) = %t, want %t", c.name, c.pat, got, c.want)
		}
	}
}

// FuzzWildMatch: wildMatch agrees with a plain recursive match of the
// pattern as given, runs of wildcards and all.
func FuzzWildMatch(f *testing.F) {
	for _, s := range [][2]string{{"a.b.c", "a%*%.c"}, {"INBOX.Sent", "*%*%*%*a"}, {"x", "%%%%x"}, {"", "*%"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, pat string) {
		if len(name) > 64 || len(pat) > 64 {
			return
		}
		if got, want := wildMatch(name, pat, '.'), recursiveMatch(name, pat, '.'); got != want {
			t.Fatalf("wildMatch(%q, %q) = %t, recursive match %t", name, pat, got, want)
		}
	})
}

// recursiveMatch matches s against pat by trying every split, each
// (name, pattern) suffix pair answered once.
func recursiveMatch(s, pat string, delim byte) bool {
	seen := map[[2]int]bool{}
	var match func(i, j int) bool
	match = func(i, j int) bool {
		k := [2]int{i, j}
		if v, ok := seen[k]; ok {
			return v
		}
		v := false
		switch {
		case j == len(pat):
			v = i == len(s)
		case pat[j] == '*' || pat[j] == '%':
			for n := i; n <= len(s) && !v; n++ {
				v = match(n, j+1)
				if pat[j] == '%' && n < len(s) && s[n] == delim {
					break
				}
			}
		default:
			v = i < len(s) && s[i] == pat[j] && match(i+1, j+1)
		}
		seen[k] = v
		return v
	}
	return match(0, 0)
}

// BenchmarkWildMatchLongPattern: a 48 KiB pattern of wildcards and
// letters against a 200-byte name costs what a short one does.
func BenchmarkWildMatchLongPattern(b *testing.B) {
	name := strings.Repeat("n", 200)
	for _, pat := range []string{"*n%", strings.Repeat("*a", 24000), strings.Repeat("%n", 24000), strings.Repeat("*%", 24000) + "x"} {
		b.Run(fmt.Sprintf("pattern=%.4s…%d", pat, len(pat)), func(b *testing.B) {
			for b.Loop() {
				wildMatch(name, pat, '.')
			}
		})
	}
}

package imap

import "strings"

// matchList reports whether a mailbox name matches a LIST reference and
// pattern (RFC 3501 section 6.3.8): "*" matches anything, "%" anything
// but the hierarchy delimiter; INBOX in any case.
func matchList(name string, delim rune, ref, pattern string) bool {
	pat := ref + pattern
	if strings.HasPrefix(pattern, string(delim)) && strings.HasSuffix(ref, string(delim)) {
		pat = ref + pattern[1:]
	}
	if strings.EqualFold(name, "INBOX") && len(pat) >= 5 && strings.EqualFold(pat[:5], "INBOX") {
		name, pat = "INBOX"+name[5:], "INBOX"+pat[5:]
	}
	return wildMatch(name, pat, byte(delim))
}

// wildMatch matches s against a pattern of "*" and "%" with a table
// over both strings: no backtracking however many wildcards.
func wildMatch(s, pat string, delim byte) bool {
	// cur[i]: pat[:j] matches s[:i].
	cur := make([]bool, len(s)+1)
	next := make([]bool, len(s)+1)
	cur[0] = true
	for j := 0; j < len(pat); j++ {
		c := pat[j]
		clear(next)
		switch c {
		case '*', '%':
			run := false
			for i := 0; i <= len(s); i++ {
				run = run || cur[i]
				next[i] = run
				if c == '%' && i < len(s) && s[i] == delim {
					run = false
				}
			}
		default:
			for i := 0; i < len(s); i++ {
				next[i+1] = cur[i] && s[i] == c
			}
		}
		cur, next = next, cur
	}
	return cur[len(s)]
}

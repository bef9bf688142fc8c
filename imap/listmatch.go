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
// over both strings: no backtracking however many wildcards. A run of
// wildcards is one ("*" if it holds one, else "%"), and a pattern with
// more other bytes than s has cannot match: a 50 KiB pattern costs a
// name of 255 bytes no more than a pattern of twice its length.
func wildMatch(s, pat string, delim byte) bool {
	pat, fixed := squeezeWildcards(pat)
	if fixed > len(s) {
		return false
	}
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

// squeezeWildcards makes each run of wildcards in pat one, and counts
// the bytes that are not wildcards.
func squeezeWildcards(pat string) (string, int) {
	if !strings.Contains(pat, "**") && !strings.Contains(pat, "%%") &&
		!strings.Contains(pat, "*%") && !strings.Contains(pat, "%*") {
		return pat, len(pat) - strings.Count(pat, "*") - strings.Count(pat, "%")
	}
	b := make([]byte, 0, len(pat))
	fixed := 0
	for i := 0; i < len(pat); {
		c := pat[i]
		if c != '*' && c != '%' {
			b = append(b, c)
			fixed++
			i++
			continue
		}
		run := byte('%')
		for ; i < len(pat) && (pat[i] == '*' || pat[i] == '%'); i++ {
			if pat[i] == '*' {
				run = '*'
			}
		}
		b = append(b, run)
	}
	return string(b), fixed
}

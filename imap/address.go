package imap

import "strings"

// address is one address structure of ENVELOPE (RFC 3501 section
// 7.4.2): display name, source route (the at-domain-list, "@a,@b"),
// local part and host. A group's start marker has only Mailbox (the
// group's name), its end marker nothing.
type address struct {
	Name, Route, Mailbox, Host string
}

// missingDomain is the host of an address written without one, as
// Dovecot gives it.
const missingDomain = "MISSING_DOMAIN"

// maxAddresses bounds the addresses one header field yields (a field is
// already bounded by the header's size; this bounds the reply).
const maxAddresses = 10000

// addrToken is one lexical token of an address field (RFC 5322 section
// 3.2): a word (atom, quoted string or domain literal) or a special.
type addrToken struct {
	text    string
	special byte // 0 for a word
	quoted  bool
}

// tokenizeAddresses splits an address field into tokens. Comments are
// left out, except that each token after which one ends carries it in
// comments (at the same index), for a mailbox that has no display name.
func tokenizeAddresses(s string) (toks []addrToken, comments []string) {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			// A comment, nested and with quoted pairs.
			depth := 0
			var b strings.Builder
			for ; i < len(s); i++ {
				ch := s[i]
				if ch == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if ch == '(' {
					depth++
					if depth == 1 {
						continue
					}
				}
				if ch == ')' {
					depth--
					if depth == 0 {
						i++
						break
					}
				}
				b.WriteByte(ch)
			}
			if n := len(toks); n > 0 {
				comments[n-1] = strings.TrimSpace(b.String())
			}
		case c == '"':
			var b strings.Builder
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				if s[i] != '\r' && s[i] != '\n' {
					b.WriteByte(s[i])
				}
			}
			i++
			toks = append(toks, addrToken{text: b.String(), quoted: true})
			comments = append(comments, "")
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				j = len(s) - i - 1
			}
			toks = append(toks, addrToken{text: s[i : i+j+1]})
			comments = append(comments, "")
			i += j + 1
		case strings.IndexByte("<>:;@,.", c) >= 0:
			toks = append(toks, addrToken{text: s[i : i+1], special: c})
			comments = append(comments, "")
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n()<>[]:;@,.\"\\", s[j]) < 0 {
				j++
			}
			if j == i {
				j++ // a lone backslash
			}
			toks = append(toks, addrToken{text: s[i:j]})
			comments = append(comments, "")
			i = j
		}
	}
	return toks, comments
}

// addrParser reads an address list from tokens.
type addrParser struct {
	toks     []addrToken
	comments []string
	pos      int
	out      []address
}

func (p *addrParser) peek() byte {
	if p.pos >= len(p.toks) {
		return 1 // end
	}
	return p.toks[p.pos].special
}

// parseAddressList parses an address field's value as RFC 5322 section
// 3.4 says, leniently as Dovecot does: groups become the group start
// and end markers of RFC 3501's ENVELOPE ((NIL NIL "name" NIL), then
// (NIL NIL NIL NIL)); a source route (RFC 5322 section 4.4's obs-route,
// "<@a.example,@b.example:user@c.example>") is kept as the address's
// adl, "@a.example,@b.example", as Dovecot gives it; a comment names a
// mailbox that has no display name; an address without a domain gets
// "MISSING_DOMAIN" so that it cannot read as a group marker.
func parseAddressList(s string) []address {
	toks, comments := tokenizeAddresses(s)
	p := &addrParser{toks: toks, comments: comments}
	for p.pos < len(p.toks) && len(p.out) < maxAddresses {
		if p.peek() == ',' {
			p.pos++
			continue
		}
		p.address(true)
	}
	return p.out
}

// address reads one mailbox, or with group a group too.
func (p *addrParser) address(group bool) {
	start := p.pos
	// The phrase, or the local part: words and dots.
	for p.pos < len(p.toks) && (p.toks[p.pos].special == 0 || p.toks[p.pos].special == '.') {
		p.pos++
	}
	phrase := p.toks[start:p.pos]
	switch p.peek() {
	case ':':
		p.pos++
		if !group {
			return // a group inside a group: its name is dropped
		}
		// A group without a name has no markers (an empty name would
		// read as the end marker).
		name := decodeHeaderValue(joinWords(phrase, " "))
		if name != "" {
			p.out = append(p.out, address{Mailbox: name})
		}
		for p.pos < len(p.toks) && p.peek() != ';' && len(p.out) < maxAddresses {
			if p.peek() == ',' {
				p.pos++
				continue
			}
			p.address(false)
		}
		p.pos++ // the ';', or the end
		if name != "" {
			p.out = append(p.out, address{})
		}
	case '<':
		p.pos++
		name := decodeHeaderValue(joinWords(phrase, " "))
		route := ""
		if p.peek() == '@' {
			route = p.route()
		}
		ls := p.pos
		for p.pos < len(p.toks) && p.peek() != '@' && p.peek() != '>' {
			p.pos++
		}
		local := p.toks[ls:p.pos]
		var domain []addrToken
		if p.peek() == '@' {
			p.pos++
			ds := p.pos
			for p.pos < len(p.toks) && p.peek() != '>' {
				p.pos++
			}
			domain = p.toks[ds:p.pos]
		}
		if p.peek() == '>' {
			p.pos++
		}
		p.mailbox(name, route, local, domain, -1)
	case '@':
		p.pos++
		ds := p.pos
		for p.pos < len(p.toks) && (p.toks[p.pos].special == 0 || p.toks[p.pos].special == '.') {
			p.pos++
		}
		p.mailbox("", "", phrase, p.toks[ds:p.pos], start)
	default:
		if len(phrase) == 0 {
			p.pos++ // a stray special
			return
		}
		p.mailbox("", "", phrase, nil, start)
	}
}

// route reads an obs-route after "<" (RFC 5322 section 4.4):
// obs-domain-list ":", where obs-domain-list is "@" domain followed by
// any more, separated by commas (empty elements allowed). It returns
// the domains as "@a,@b", each domain's words and dots joined, as
// Dovecot writes the adl. Without the closing ":" (not a route) nothing
// is kept and the tokens up to ":" or ">" are skipped, as before.
func (p *addrParser) route() string {
	var b strings.Builder
	for p.pos < len(p.toks) {
		switch p.peek() {
		case ',':
			p.pos++
			continue
		case '@':
			p.pos++
			ds := p.pos
			for p.pos < len(p.toks) && (p.toks[p.pos].special == 0 || p.toks[p.pos].special == '.') {
				p.pos++
			}
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('@')
			b.WriteString(joinWords(p.toks[ds:p.pos], ""))
			continue
		case ':':
			p.pos++
			return b.String()
		}
		break
	}
	// Not a route: skip to where the address would start, or its end.
	for p.pos < len(p.toks) && p.peek() != ':' && p.peek() != '>' {
		p.pos++
	}
	if p.peek() == ':' {
		p.pos++
	}
	return ""
}

// mailbox appends one address. A bare addr-spec (first >= 0) is named
// by the last comment from token first on ("user@example.org (Real
// Name)").
func (p *addrParser) mailbox(name, route string, local, domain []addrToken, first int) {
	if first >= 0 {
		for i := first; i < p.pos && i < len(p.comments); i++ {
			if p.comments[i] != "" {
				name = decodeHeaderValue(p.comments[i])
			}
		}
	}
	host := joinWords(domain, "")
	if host == "" {
		host = missingDomain
	}
	mbox := joinWords(local, "")
	if mbox == "" {
		mbox = "MISSING_MAILBOX"
	}
	p.out = append(p.out, address{Name: name, Route: route, Mailbox: mbox, Host: host})
}

// joinWords joins tokens' text, a word after a word or a dot separated
// by sep ("J. Doe" as a phrase, "a.b" as a local part or domain).
func joinWords(toks []addrToken, sep string) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && t.special == 0 {
			b.WriteString(sep)
		}
		b.WriteString(t.text)
	}
	return b.String()
}

package imap

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// renderAddresses shows addresses as (name mailbox host), with the
// route as @route: before the mailbox when there is one.
func renderAddresses(list []address) string {
	var b strings.Builder
	for _, a := range list {
		if a.Route != "" {
			fmt.Fprintf(&b, "(%q %q:%q %q)", a.Name, a.Route, a.Mailbox, a.Host)
			continue
		}
		fmt.Fprintf(&b, "(%q %q %q)", a.Name, a.Mailbox, a.Host)
	}
	return b.String()
}

func TestParseAddressList(t *testing.T) {
	cases := []struct{ in, want string }{
		{"user@domain", `("" "user" "domain")`},
		{"Real Name <user@domain>", `("Real Name" "user" "domain")`},
		{"user@domain (Real Name)", `("Real Name" "user" "domain")`},
		{`"Doe, John" <john@x.example>, b@y.example`, `("Doe, John" "john" "x.example")("" "b" "y.example")`},
		{"<user-from (comment)@ (comment) domain.org>", `("" "user-from" "domain.org")`},
		{"<@route:user@domain>", `("" "@route":"user" "domain")`},
		{"<@a.example,@b.example:user@c.example>", `("" "@a.example,@b.example":"user" "c.example")`},
		{"Real <@a.example, ,@b.example (c) : user@c.example>", `("Real" "@a.example,@b.example":"user" "c.example")`},
		{"=?UTF-8?Q?J=C3=B6rg?= <@relay.example:j@x.example>", `("Jörg" "@relay.example":"j" "x.example")`},
		{"Jörg <@relay.example:j@x.example>", `("Jörg" "@relay.example":"j" "x.example")`},
		{"team: A <@r1.example:a@x.example>, b@y.example;",
			`("" "team" "")("A" "@r1.example":"a" "x.example")("" "b" "y.example")("" "" "")`},
		{"<@notaroute>", `("" "MISSING_MAILBOX" "MISSING_DOMAIN")`},
		{"group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;",
			`("" "group" "")("" "g1" "d1.org")("" "g2" "d2.org")("" "" "")("" "group2" "")("" "g3" "d3.org")("" "" "")`},
		{"group:;, group2: (foo) ;", `("" "group" "")("" "" "")("" "group2" "")("" "" "")`},
		{"J. Doe <j@a.b.example>", `("J. Doe" "j" "a.b.example")`},
		{"=?ISO-8859-1?Q?J=F6rg?= <j@x.example>", `("Jörg" "j" "x.example")`},
		{`"a b"@x.example`, `("" "a b" "x.example")`},
		{"undisclosed", `("" "undisclosed" "MISSING_DOMAIN")`},
		{"", ``},
	}
	for _, c := range cases {
		if got := renderAddresses(parseAddressList(c.in)); got != c.want {
			t.Errorf("parseAddressList(%q)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

// FuzzAddressList: any field parses without panicking into a bounded
// list whose group markers are balanced and whose text is UTF-8.
func FuzzAddressList(f *testing.F) {
	for _, s := range []string{
		"a@b", "A <a@b>, c@d (C)", "g: a@b, c@d;, h:;", "<@r1,@r2:a@b>", `"q\"x" <a@[1.2.3.4]>`,
		"(nested (comment)) a@b", "=?UTF-8?B?w6k=?= <e@f>", "((((", "<<<>>>", "g: h: a@b;;",
		"g: X <@a,@b:c@d>;", "<@a,,@b.c:x@y>", "<@:x@y>", "<@a", "<@a,@b", "Jörg <@r:j@x>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list := parseAddressList(s)
		if len(list) > maxAddresses+1 {
			t.Fatalf("%d addresses", len(list))
		}
		open := 0
		for _, a := range list {
			switch {
			case a.Host == "" && a.Mailbox != "":
				open++
			case a.Host == "" && a.Mailbox == "":
				open--
			}
			if open < 0 || open > 1 {
				t.Fatalf("unbalanced group markers in %q: %s", s, renderAddresses(list))
			}
			if !utf8.ValidString(a.Name) {
				t.Fatalf("name %q not UTF-8", a.Name)
			}
			// A route is an at-domain-list, on a mailbox only.
			if a.Route != "" && (a.Route[0] != '@' || a.Host == "" || strings.HasSuffix(a.Route, ",")) {
				t.Fatalf("route %q on %s", a.Route, renderAddresses([]address{a}))
			}
		}
		if open != 0 {
			t.Fatalf("unterminated group in %q: %s", s, renderAddresses(list))
		}
	})
}

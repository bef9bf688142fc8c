package store

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParseAddress(t *testing.T) {
	ok := []struct {
		in, local, domain, str string
	}{
		{"alice@example.org", "alice", "example.org", "alice@example.org"},
		{"Alice.Smith@EXAMPLE.Org", "Alice.Smith", "example.org", "Alice.Smith@example.org"},
		{"user+tag@example.org", "user+tag", "example.org", "user+tag@example.org"},
		{"a/b=c?d^e{f}~@example.org", "a/b=c?d^e{f}~", "example.org", "a/b=c?d^e{f}~@example.org"},
		// Quoted local parts: unquoted when they are a dot-atom.
		{`"alice"@example.org`, "alice", "example.org", "alice@example.org"},
		{`"john doe"@example.org`, "john doe", "example.org", `"john doe"@example.org`},
		{`"a\"b"@example.org`, `a"b`, "example.org", `"a\"b"@example.org`},
		{`".."@example.org`, "..", "example.org", `".."@example.org`},
		// IDNA: A-labels and upper case map to lower-case U-labels.
		{"info@Bücher.example", "info", "bücher.example", "info@bücher.example"},
		{"info@xn--bcher-kva.example", "info", "bücher.example", "info@bücher.example"},
		{"info@BÜCHER.EXAMPLE", "info", "bücher.example", "info@bücher.example"},
		// SMTPUTF8 local parts, NFC-normalised (e + combining acute → é).
		{"josé@example.org", "josé", "example.org", "josé@example.org"},
		{"jose\u0301@example.org", "josé", "example.org", "josé@example.org"},
		{"用户@例子.测试", "用户", "例子.测试", "用户@例子.测试"},
		// Address literals.
		{"postmaster@[192.0.2.1]", "postmaster", "[192.0.2.1]", "postmaster@[192.0.2.1]"},
		{"postmaster@[IPv6:2001:DB8::1]", "postmaster", "[IPv6:2001:db8::1]", "postmaster@[IPv6:2001:db8::1]"},
		{"a@localhost", "a", "localhost", "a@localhost"},
		{strings.Repeat("l", 64) + "@example.org", strings.Repeat("l", 64), "example.org", strings.Repeat("l", 64) + "@example.org"},
	}
	for _, c := range ok {
		a, err := ParseAddress(c.in)
		if err != nil {
			t.Errorf("ParseAddress(%q): %v", c.in, err)
			continue
		}
		if a.Local != c.local || a.Domain != c.domain || a.String() != c.str {
			t.Errorf("ParseAddress(%q) = %q, %q, %q; want %q, %q, %q", c.in, a.Local, a.Domain, a.String(), c.local, c.domain, c.str)
		}
	}

	bad := []struct{ in, why string }{
		{"", "empty"},
		{"alice", "no domain"},
		{"alice@", "empty domain"},
		{"@example.org", "empty local"},
		// Relay tricks.
		{"user%other.example@example.org", "percent hack"},
		{"@relay.example:user@other.example", "source route"},
		{"@a.example,@b.example:user@c.example", "source route list"},
		{`"user@other.example"@example.org`, "quoted @"},
		{`"user%other"@example.org`, "quoted percent"},
		{`"a!b"@example.org`, "quoted bang"},
		{"host!user@example.org", "bang path"},
		{"user@x.example@y.example", "two @"},
		{"user@@example.org", "empty between @"},
		// Syntax.
		{".alice@example.org", "leading dot"},
		{"alice.@example.org", "trailing dot"},
		{"al..ice@example.org", "double dot"},
		{"al ice@example.org", "space"},
		{"al\"ice@example.org", "quote inside atom"},
		{"alice@example.org.", "trailing dot in domain"},
		{"alice@exa mple.org", "space in domain"},
		{"alice@exa_mple.org", "underscore in domain"},
		{"alice@-example.org", "leading hyphen"},
		{"alice@example..org", "empty label"},
		{`"alice@example.org`, "unterminated quote"},
		{"\"a\x01\"@example.org", "control in quoted"},
		{"a\x00b@example.org", "NUL"},
		{"a\x85b@example.org", "invalid UTF-8"},
		{"a\u0085b@example.org", "C1 control"},
		{"alice@[192.0.2.300]", "bad literal"},
		{"alice@[IPv6:::ffff:192.0.2.1]", "mapped literal"},
		{"alice@[192.0.2.1", "unterminated literal"},
		{strings.Repeat("l", 65) + "@example.org", "local too long"},
		{"a@" + strings.Repeat("a.", 130) + "org", "too long"},
		{"a@" + strings.Repeat("x", 64) + ".org", "label too long"},
	}
	for _, c := range bad {
		a, err := ParseAddress(c.in)
		var ae *AddressError
		if !errors.As(err, &ae) {
			t.Errorf("ParseAddress(%q) [%s] = %+v, %v; want *AddressError", c.in, c.why, a, err)
		}
	}
}

func TestAddressForms(t *testing.T) {
	a, err := ParseAddress("Jörg@Bücher.example")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.ASCII(); got != "Jörg@xn--bcher-kva.example" {
		t.Errorf("ASCII = %q", got)
	}
	if !a.NeedsSMTPUTF8() {
		t.Error("NeedsSMTPUTF8 = false for a UTF-8 local part")
	}
	if got := a.Key(); got != "jörg@bücher.example" {
		t.Errorf("Key = %q", got)
	}
	b, _ := ParseAddress("JÖRG@xn--bcher-kva.example")
	if a.Key() != b.Key() {
		t.Errorf("keys differ: %q %q", a.Key(), b.Key())
	}
	c, _ := ParseAddress("info@bücher.example")
	if c.NeedsSMTPUTF8() {
		t.Error("NeedsSMTPUTF8 = true for an ASCII local part")
	}
	if d, err := ParseDomain("EXAMPLE.org"); err != nil || d != "example.org" {
		t.Errorf("ParseDomain = %q, %v", d, err)
	}
	if DomainASCII("[192.0.2.1]") != "[192.0.2.1]" {
		t.Error("DomainASCII changed a literal")
	}
}

func TestDefaultMaildir(t *testing.T) {
	cases := map[string]string{
		"Alice@Example.org":     "example.org/alice/Maildir",
		"a/b@example.org":       "example.org/a%2Fb/Maildir",
		`"..\\x"@example.org`:   "example.org/%2E.%5Cx/Maildir",
		"用户@例子.测试":              "例子.测试/用户/Maildir",
		"info@xn--bcher-kva.ex": "bücher.ex/info/Maildir",
	}
	for in, want := range cases {
		a, err := ParseAddress(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := DefaultMaildir(a); got != want {
			t.Errorf("DefaultMaildir(%s) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseAddress checks that parsing never panics, that accepted
// addresses are within limits and free of relay tricks, and that the
// canonical form parses back to the same address.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"alice@example.org", `"john doe"@example.org`, "user%x@y", "@a:b@c", "a!b@c",
		"x@[IPv6:2001:db8::1]", "josé@bücher.example", `"a\"b"@x.org`, "a@b@c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			var ae *AddressError
			if !errors.As(err, &ae) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if a.Local == "" || len(a.Local) > maxLocalLen || !utf8.ValidString(a.Local) {
			t.Fatalf("bad local part %q", a.Local)
		}
		if strings.ContainsAny(a.Local, "@%!") || strings.ContainsAny(a.Domain, "@%!") {
			t.Fatalf("relay character accepted: %q", s)
		}
		b, err := ParseAddress(a.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", a.String(), s, err)
		}
		if b != a {
			t.Fatalf("round trip %q → %+v → %+v", s, a, b)
		}
	})
}

// TestFoldRune checks foldRune against Unicode's simple case folding
// over every code point: each letter folds to a member of its
// unicode.SimpleFold orbit, and every member of an orbit folds alike, so
// two local parts fold to the same string exactly when they are equal
// under simple case folding.
func TestFoldRune(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xd800 && r < 0xe000 {
			continue
		}
		f := foldRune(r)
		inOrbit := f == r
		for o := unicode.SimpleFold(r); o != r; o = unicode.SimpleFold(o) {
			if o == f {
				inOrbit = true
			}
			if g := foldRune(o); g != f {
				t.Fatalf("foldRune(%U) = %U but foldRune(%U) = %U, same orbit", r, f, o, g)
			}
		}
		if !inOrbit {
			t.Fatalf("foldRune(%U) = %U, not in its orbit", r, f)
		}
	}
}

func TestFoldLocal(t *testing.T) {
	cases := []struct{ in, want string }{
		{"alice", "alice"},
		{"Alice.Smith", "alice.smith"},
		{"josé", "josé"},
		{"José", "josé"},
		{"JOSÉ", "josé"},
		{"jOSÉ+Tag", "josé+tag"},
		// Final sigma folds with sigma: "ΟΔΥΣΣΕΥΣ" is "οδυσσευς".
		{"ΟΔΥΣΣΕΥΣ", "οδυσσευσ"},
		{"οδυσσευς", "οδυσσευσ"},
		// The capital sharp s folds to ß; ß is never "ss" (simple, not
		// full, case folding), so "STRASSE" is not "straße".
		{"STRAẞE", "straße"},
		{"straße", "straße"},
		{"STRASSE", "strasse"},
		// Turkic mappings are left out: dotted capital İ and dotless ı
		// fold only to themselves, so "İpek" is neither "ipek" nor
		// "IPEK", and "ılgaz" is not "ilgaz"; plain I folds to i.
		{"İPEK", "İpek"},
		{"ılgaz", "ılgaz"},
		{"ILGAZ", "ilgaz"},
		// Compatibility letters in an orbit with ASCII fold to ASCII.
		{"\u212Aelvin", "kelvin"},
		{"ſun", "sun"},
		// Caseless scripts are unchanged.
		{"用户", "用户"},
	}
	for _, c := range cases {
		if got := FoldLocal(c.in); got != c.want {
			t.Errorf("FoldLocal(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Accents are never removed.
	if FoldLocal("JOSE") == FoldLocal("josé") {
		t.Error("JOSE folds like josé")
	}
}

package headerenc

import (
	"net/mail"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEncoders(t *testing.T) {
	for _, c := range []struct{ name, got, want string }{
		{"Path null", Path(""), "<>"},
		{"Path plain", Path("a.b@example.org"), "<a.b@example.org>"},
		{"Path quoted", Path(`a b"c\d@example.org`), `<"a b\"c\\d"@example.org>`},
		{"Path injection", Path("x\r\nX-Inj: 1@r.example"), `<"x  X-Inj: 1"@r.example>`},
		{"Path dots", Path("a..b@example.org"), `<"a..b"@example.org>`},
		{"Path utf8", Path("jörg@bücher.example"), "<jörg@bücher.example>"},
		{"Path literal", Path("a@[192.0.2.1]"), "<a@[192.0.2.1]>"},
		{"Path at in local", Path("a@b@example.org"), `<"a@b"@example.org>`},
		{"Path bad domain", Path("a@ex(am)ple\x00.org"), "<a@ex?am?ple?.org>"},
		{"AddrSpec", AddrSpec("postmaster"), "postmaster"},
		{"Domain ok", Domain("mx.example"), "mx.example"},
		{"Domain bad", Domain("mx\r\nX: y"), "mx??X??y"},
		{"Domain empty", Domain(""), "?"},
		{"Comment", CommentText("a (b) \\c\r\nd"), `a \(b\) \\c  d`},
		{"Text", Text("550 no\r\n550 such\x00user\xff"), "550 no  550 such user\uFFFD"},
		{"Value token", Value("pass"), "pass"},
		{"Value addr", Value("a@example.org"), "a@example.org"},
		{"Value quoted", Value("a b;\r\n\"c\""), `"a b;  \"c\""`},
		{"Value empty", Value(""), `""`},
		{"Unitext", Unitext("jörg+x=y\\z @\x01"), `jörg\x{2B}x\x{3D}y\x{5C}z\x{20}@\x{1}`},
		{"Field fold", Field("X-A: a\r\n\tb"), "X-A: a\r\n\tb"},
		{"Field injection", Field("X-A: a\r\nX-Inj: 1\r\n\r\nbody"), "X-A: aX-Inj: 1body"},
		{"Field blank fold", Field("X-A: a\r\n \r\n\tb"), "X-A: a \r\n\tb"},
		{"Field bare CR", Field("X-A: a\rX-Inj: 1\x00"), "X-A: aX-Inj: 1"},
		{"Field no name", Field("no colon"), ""},
		{"Field bad name", Field("X A: b"), ""},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

// safe reports whether s could be part of a header field value: valid
// UTF-8 without control characters.
func safe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if isControl(r) {
			return false
		}
	}
	return true
}

// FuzzEncoders checks the encoder's promise on any input: no control
// character, no invalid UTF-8, and a Return-Path written with Path is
// one field that a mail parser reads as one address, the one given when
// it was a writable address to begin with.
func FuzzEncoders(f *testing.F) {
	for _, s := range []string{"", "a@b.example", "x\r\nX-Inj: 1@r.example", `"q"@x`, "a@[1.2.3.4]",
		"jörg@bücher.example", "\xff\xfe@\x00", "a(b)@c", `\`, "a@b@c", "X-A: a\r\n\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, out := range map[string]string{
			"Text": Text(s), "CommentText": CommentText(s), "Value": Value(s), "Domain": Domain(s),
			"AddrSpec": AddrSpec(s), "Path": Path(s), "Unitext": Unitext(s),
		} {
			if !safe(out) {
				t.Fatalf("%s(%q) = %q", name, s, out)
			}
		}
		for _, utf8OK := range []bool{false, true} {
			h, ok := HostName(s, utf8OK)
			if ok && (!safe(h) || !IsDomain(h) || (!utf8OK && !isASCII(h))) {
				t.Fatalf("HostName(%q, %v) = %q", s, utf8OK, h)
			}
			if c := Comment(s, utf8OK); !safe(c) || (!utf8OK && !isASCII(c)) {
				t.Fatalf("Comment(%q, %v) = %q", s, utf8OK, c)
			}
		}
		f := Field(s)
		if strings.ContainsAny(strings.ReplaceAll(f, "\r\n", ""), "\r\n") {
			t.Fatalf("Field(%q) = %q has a bare line break", s, f)
		}
		for _, l := range strings.Split(f, "\r\n")[1:] {
			if strings.TrimLeft(l, " \t") == "" || !safe(strings.ReplaceAll(l, "\t", " ")) {
				t.Fatalf("Field(%q) = %q: line %q", s, f, l)
			}
		}
		msg := "Return-Path: " + Path(s) + "\r\nX-After: 1\r\n\r\n"
		m, err := mail.ReadMessage(strings.NewReader(msg))
		if err != nil {
			t.Fatalf("%q: %v", msg, err)
		}
		if len(m.Header) != 2 || m.Header.Get("X-After") != "1" {
			t.Fatalf("%q read as %v", msg, m.Header)
		}
		if strings.LastIndexByte(s, '@') <= 0 || strings.HasSuffix(s, "]") || Domain(s[strings.LastIndexByte(s, '@')+1:]) != s[strings.LastIndexByte(s, '@')+1:] || !safe(s) || strings.ContainsAny(s, "\t") {
			return
		}
		a, err := mail.ParseAddress(m.Header.Get("Return-Path"))
		if err != nil {
			if isASCII(s) {
				t.Fatalf("Return-Path %q: %v", Path(s), err)
			}
			return
		}
		if a.Address != s {
			t.Fatalf("Return-Path %q read as %q, want %q", Path(s), a.Address, s)
		}
	})
}

package headerenc

import (
	"mime"
	"testing"
)

func TestHostName(t *testing.T) {
	for _, c := range []struct {
		in     string
		utf8OK bool
		want   string
		ok     bool
	}{
		{"mx.example.org", false, "mx.example.org", true},
		{"[192.0.2.1]", false, "[192.0.2.1]", true},
		{"mx.bücher.example", false, "mx.xn--bcher-kva.example", true},
		{"MX.Bücher.Example", false, "mx.xn--bcher-kva.example", true},
		{"mx.bücher.example", true, "mx.bücher.example", true},
		{"\u0301x.bücher.example", false, "", false}, // label starts with a combining mark
		{"bücher..example", false, "", false},
		{"bücher_(x)", false, "", false},
		{"evil name", false, "evil name", false},
		{"a\r\nX-Inj: 1", true, "a\r\nX-Inj: 1", false},
	} {
		got, ok := HostName(c.in, c.utf8OK)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("HostName(%q, %v) = %q, %v; want %q, %v", c.in, c.utf8OK, got, ok, c.want, c.ok)
		}
	}
}

func TestComment(t *testing.T) {
	for _, c := range []struct {
		in     string
		utf8OK bool
		want   string
	}{
		{"plain (x)", false, `plain \(x\)`},
		{"bücher (x)", true, `bücher \(x\)`},
		{"bücher (x)", false, "=?utf-8?b?YsO8Y2hlciAoeCk=?="},
		{"bü\r\nX-Inj: 1", false, "=?utf-8?b?YsO8ICBYLUluajogMQ==?="},
	} {
		got := Comment(c.in, c.utf8OK)
		if got != c.want {
			t.Errorf("Comment(%q, %v) = %q, want %q", c.in, c.utf8OK, got, c.want)
		}
	}
	// A reader decodes the encoded form back to the text, controls
	// replaced by spaces.
	dec, err := new(mime.WordDecoder).DecodeHeader(Comment("bü\r\nX", false))
	if err != nil || dec != "bü  X" {
		t.Fatalf("decoded %q, %v", dec, err)
	}
}

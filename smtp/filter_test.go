package smtp

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mailagent/mailagent/smtp/mail"
)

// FuzzEditMessage: whatever the message, editing never panics; with no
// edits a message whose header ends in an empty line comes out byte for
// byte as it went in, and an added field comes out once, before the
// empty line, with the body unchanged.
func FuzzEditMessage(f *testing.F) {
	f.Add([]byte("Subject: a\r\nX-Long: one\r\n two\r\n\r\nbody\r\n"), "X-Added", "v\n\tw")
	f.Add([]byte(" lead\r\nA:b\r\n\r\n"), "X", "")
	f.Add([]byte("No-Body: x"), "Y", "\r\n")
	f.Fuzz(func(t *testing.T, msg []byte, name, value string) {
		var out bytes.Buffer
		if err := editMessage(&out, mail.BytesBody(msg), nil); err != nil {
			return
		}
		hasSep := bytes.HasPrefix(msg, []byte("\r\n")) || bytes.HasPrefix(msg, []byte("\n")) ||
			bytes.Contains(msg, []byte("\n\r\n")) || bytes.Contains(msg, []byte("\n\n"))
		if hasSep && !bytes.Equal(out.Bytes(), msg) {
			t.Fatalf("no edits changed the message:\n%q\n%q", msg, out.Bytes())
		}
		if name == "" || strings.ContainsAny(name, ":\r\n \t") || !hasSep {
			return
		}
		out.Reset()
		if err := editMessage(&out, mail.BytesBody(msg), []mail.Edit{{Kind: mail.AddHeader, Name: name, Value: value}}); err != nil {
			t.Fatal(err)
		}
		field := formatField(name, value)
		i := bytes.Index(out.Bytes(), field)
		if i < 0 {
			t.Fatalf("added field %q missing:\n%q", field, out.Bytes())
		}
		if !bytes.HasSuffix(out.Bytes(), msg[len(msg)-len(out.Bytes()[i+len(field):]):]) {
			t.Fatalf("body changed:\n%q\n%q", msg, out.Bytes())
		}
	})
}

func TestFormatField(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          "N: plain\r\n",
		" spaced":        "N: spaced\r\n",
		"a\n\tb":         "N: a\r\n\tb\r\n",
		"a\r\nb":         "N: a\r\n\tb\r\n",
		"a\n\nb":         "N: a\r\n\t\r\n\tb\r\n",
		"trailing\r\n\n": "N: trailing\r\n",
	} {
		if got := string(formatField("N", in)); got != want {
			t.Errorf("formatField(%q) = %q, want %q", in, got, want)
		}
	}
}

package imapwire

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func written(utf8 bool, f func(w *Writer)) string {
	var b bytes.Buffer
	w := NewWriter(bufio.NewWriter(&b))
	w.UTF8 = utf8
	f(w)
	w.Flush()
	return b.String()
}

func TestWriterStrings(t *testing.T) {
	cases := []struct {
		utf8 bool
		f    func(w *Writer)
		want string
	}{
		{false, func(w *Writer) { w.String(`a "b" \c`) }, `"a \"b\" \\c"`},
		{false, func(w *Writer) { w.String("line\r\nbreak") }, "{11}\r\nline\r\nbreak"},
		{false, func(w *Writer) { w.String("Grüße") }, "{7}\r\nGrüße"},
		{true, func(w *Writer) { w.String("Grüße") }, `"Grüße"`},
		{true, func(w *Writer) { w.String("\xff") }, "{1}\r\n\xff"},
		{false, func(w *Writer) { w.String(strings.Repeat("x", 1025)) }, "{1025}\r\n" + strings.Repeat("x", 1025)},
		{false, func(w *Writer) { w.AString("Sent") }, "Sent"},
		{false, func(w *Writer) { w.AString("nil") }, `"nil"`},
		{false, func(w *Writer) { w.AString("") }, `""`},
		{false, func(w *Writer) { w.NString("", false) }, "NIL"},
		{false, func(w *Writer) { w.Mailbox("inbox") }, "INBOX"},
		{false, func(w *Writer) { w.Mailbox("Ärger & Co") }, `"&AMQ-rger &- Co"`},
		{true, func(w *Writer) { w.Mailbox("Ärger & Co") }, `"Ärger & Co"`},
		{true, func(w *Writer) { w.Mailbox("Ärger&Co") }, `"Ärger&Co"`},
		{false, func(w *Writer) { w.LiteralHeader(3, true); w.Write([]byte("\x00\x01\x02")) }, "~{3}\r\n\x00\x01\x02"},
		{false, func(w *Writer) { w.Flags([]imap.Flag{imap.FlagSeen, "$Junk"}) }, `(\Seen $Junk)`},
		{false, func(w *Writer) { w.NumSet(imap.UIDSet{{Start: 1, Stop: 3}, {Start: 7, Stop: 0}}) }, "1:3,7:*"},
		{false, func(w *Writer) { w.Status("a", imap.StatusResponseTypeNo, "TOOBIG", "Too big") }, "a NO [TOOBIG] Too big\r\n"},
		{false, func(w *Writer) { w.Status("", imap.StatusResponseTypeBad, "", "[ALERT] bad\r\nx") }, "* BAD (ALERT] bad  x\r\n"},
		{false, func(w *Writer) { w.Continue("Ready") }, "+ Ready\r\n"},
	}
	for i, c := range cases {
		if got := written(c.utf8, c.f); got != c.want {
			t.Errorf("%d: got %q, want %q", i, got, c.want)
		}
	}
}

// TestWriterReaderRoundTrip: what the Writer writes as a string or
// mailbox name, the Reader reads back the same, in both modes.
func TestWriterReaderRoundTrip(t *testing.T) {
	for _, utf8 := range []bool{false, true} {
		for _, name := range []string{"INBOX", "Ärger & Co", "a\"b\\c", "日本語/下", "x y", "&", "nil", "]"} {
			line := written(utf8, func(w *Writer) { w.Atom("a SELECT "); w.Mailbox(name); w.End() })
			r := newTestReader(line)
			r.UTF8 = utf8
			cmd, err := r.ReadCommand()
			if err != nil || cmd.Args.(*Select).Mailbox != name {
				t.Errorf("UTF8 %t: %q written as %q read as %+v %v", utf8, name, line, cmd, err)
			}
		}
	}
}
